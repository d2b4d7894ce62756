"""Causal erasure: LEACE leaves a linear probe at chance on the erased layer, the control erases a
random subspace of the same rank, and replaying the cached blocks gives exactly the logits of a
full forward pass with the layer's output edited (BERT, GPT-2, LLaMA, and T5's encoder with its
decoder on top)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from bioprobe.analysis.erasure import (
    _clean_pass,
    _replayed,
    fit_erasers,
    random_eraser,
    transformer_blocks,
)
from bioprobe.analysis.pooling import masked_mean


def _batch(tokenizer, sentences):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # as bioprobe pads (LLaMA's tokenizer pads on the left)
    return dict(tokenizer(sentences, padding=True, return_tensors="pt"))


def _probe_accuracy(x: torch.Tensor, y: np.ndarray) -> float:
    """A plain scikit-learn logistic regression fitted and scored on the same rows: the best
    linear read-out of `y` there is, up to the regularisation. One scale for all coordinates
    (not per-coordinate standardising, which would blow up the directions a LayerNorm leaves
    with zero variance, where rounding noise of an exact-function label is separable)."""
    x = x.double().numpy()
    x = (x - x.mean(0)) / x.std()
    return LogisticRegression(max_iter=5000).fit(x, y).score(x, y)


def _class_means_gap(x: torch.Tensor, y: torch.Tensor) -> float:
    """The largest distance between a class's mean and the overall mean, relative to the
    spread: LEACE's guarantee is that it is zero (then no linear classifier beats a constant)."""
    x = x.double()
    gaps = [(x[y == c].mean(0) - x.mean(0)).norm() for c in y.unique()]
    return float(max(gaps) / x.std(0).norm())


@pytest.fixture(scope="module")
def minilm_texts(minilm_dir, bio_corpus):
    """MiniLM with a fresh 2-class head, 400 random 5-word texts and their states per site."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2).eval()
    blocks = transformer_blocks(model)
    # more texts than hidden dimensions: with fewer, rounding alone makes any labels separable
    vocab = sorted({w for s in bio_corpus for w in s.split()})
    rng = np.random.default_rng(0)
    batch = _batch(tokenizer, [" ".join(rng.choice(vocab, size=5)) for _ in range(400)])
    _, sites, _ = _clean_pass(model, blocks, batch)
    return model, blocks, batch, sites


@pytest.mark.parametrize("site", [1, 3, 6])  # site 0: [CLS] is one embedding for all
def test_leace_leaves_a_linear_probe_at_chance_and_the_control_does_not(
    minilm_texts, site, one_torch_thread
):
    model, blocks, batch, sites = minilm_texts
    cls = sites[site][:, 0]
    # a property the layer holds linearly: the side of a random hyperplane through the median
    score = cls.double() @ torch.randn(cls.shape[1], dtype=torch.float64)
    labels = (score > score.median()).long()
    assert _probe_accuracy(cls, labels.numpy()) >= 0.7

    erasers = fit_erasers(model, blocks, [(batch, labels)], "pair", n_labels=2, seed=1)
    assert len(erasers.task) == len(blocks) + 1
    majority = max(labels.float().mean().item(), 1 - labels.float().mean().item())
    erased = erasers.task[site](cls.double())
    assert _class_means_gap(erased, labels) < 1e-9 < _class_means_gap(cls, labels)
    assert _probe_accuracy(erased, labels.numpy()) <= majority + 0.1
    # the control removes a random direction of the same rank: the property stays readable
    assert erasers.ranks[site] == 1
    assert _probe_accuracy(erasers.control[site](cls.double()), labels.numpy()) >= 0.7


def test_a_word_task_erases_at_the_labelled_positions(tiny_bert_dir, bio_corpus):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=3).eval()
    blocks = transformer_blocks(model)
    batch = _batch(tokenizer, bio_corpus[:16])
    _, sites, _ = _clean_pass(model, blocks, batch)
    site = 1
    kept = batch["attention_mask"].bool()
    kept[:, 0] = False  # [CLS] is not a word: -100, as the feature builder labels it
    vectors = sites[site][kept]
    third = torch.quantile(vectors[:, 0], torch.tensor([1 / 3, 2 / 3]))
    tags = torch.bucketize(vectors[:, 0], third)  # 3 classes read off one coordinate
    labels = torch.full(kept.shape, -100)
    labels[kept] = tags
    assert _probe_accuracy(vectors, tags.numpy()) >= 0.7

    erasers = fit_erasers(model, blocks, [(batch, labels)], "ner", n_labels=3, seed=0)
    assert erasers.ranks[site] == 2  # one-hot over 3 classes, centred: rank 2
    majority = np.bincount(tags.numpy()).max() / len(tags)
    erased = erasers.task[site](vectors.double())
    assert _class_means_gap(erased, tags) < 1e-9 < _class_means_gap(vectors, tags)
    assert _probe_accuracy(erased, tags.numpy()) <= majority + 0.1


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize(
    ("family", "head"),
    [
        ("bert", "sequence"),
        ("gpt2", "sequence"),
        ("llama", "sequence"),
        ("llama", "token"),
        ("t5", "sequence"),  # the encoder's blocks replayed, the decoder and head run on top
        ("t5", "token"),  # an encoder alone
    ],
)
def test_replaying_cached_blocks_equals_a_full_forward_with_the_edit(
    family, head, request, bio_corpus
):
    torch.manual_seed(0)
    location = request.getfixturevalue(f"tiny_{family}_dir")
    tokenizer = AutoTokenizer.from_pretrained(location)
    auto = AutoModelForSequenceClassification
    if head == "token":
        auto = AutoModelForTokenClassification
    model = auto.from_pretrained(location, num_labels=3).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.eos_token_id
    blocks = transformer_blocks(model)
    if family == "t5":  # the encoder's blocks, whatever the head
        assert blocks is model.get_encoder().block and len(blocks) == 2
    batch = _batch(tokenizer, bio_corpus[:5])
    clean, sites, outputs = _clean_pass(model, blocks, batch)
    with torch.inference_mode():
        torch.testing.assert_close(clean, model(**batch).logits)
    hidden = sites[0].shape[-1]
    if head == "token":
        labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"] % 3, -100)
        fitted = fit_erasers(model, blocks, [(batch, labels)], "ner", n_labels=3, seed=0)
    else:
        labels = torch.tensor([0, 1, 2, 0, 1])
        fitted = fit_erasers(model, blocks, [(batch, labels)], "pair", n_labels=3, seed=0)
    gen = torch.Generator().manual_seed(3)
    for site in range(len(blocks) + 1):
        eraser = random_eraser(fitted.task[site].eraser, 4, gen)
        assert eraser.proj_left.shape == (hidden, 4)
        with _replayed(blocks, outputs, site, eraser), torch.inference_mode():
            replayed = model(**batch).logits
        # the reference: every block runs, the edit made by a hook on the site's block
        if site == 0:
            hook = blocks[0].register_forward_pre_hook(lambda _m, a, e=eraser: (e(a[0]), *a[1:]))
        else:

            def edit(_module, _args, out, e=eraser):  # a T5 block returns a tuple
                return (e(out[0]), *out[1:]) if isinstance(out, tuple) else e(out)

            hook = blocks[site - 1].register_forward_hook(edit)
        try:
            with torch.inference_mode():
                reference = model(**batch).logits
        finally:
            hook.remove()
        torch.testing.assert_close(replayed, reference, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(replayed, clean)  # the edit changed something
    assert all("forward" not in vars(b) for b in blocks)  # the replay left no patch behind


def test_t5_sequence_erasers_fit_the_encoders_mean_and_erase_it(tiny_t5_dir, bio_corpus):
    """T5's sequence head reads its decoder: the erasers are fitted on the masked mean of the
    encoder's states (the dumps' sentence vector), and erasing every position erases the mean."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_t5_dir, num_labels=2).eval()
    blocks = transformer_blocks(model)
    vocab = sorted({w for s in bio_corpus for w in s.split()})
    rng = np.random.default_rng(0)
    batch = _batch(tokenizer, [" ".join(rng.choice(vocab, size=5)) for _ in range(200)])
    _, sites, _ = _clean_pass(model, blocks, batch)
    site = 1
    mean = masked_mean(sites[site], batch["attention_mask"])
    score = mean.double() @ torch.randn(mean.shape[1], dtype=torch.float64)
    labels = (score > score.median()).long()
    erasers = fit_erasers(model, blocks, [(batch, labels)], "pair", n_labels=2, seed=0)
    assert erasers.ranks[site] == 1
    erased_tokens = erasers.task[site](sites[site].double())
    erased_mean = masked_mean(erased_tokens, batch["attention_mask"])
    # (1e-6, not 1e-9: the eraser was fitted on the float32 mean of the float32 states)
    assert _class_means_gap(erased_mean, labels) < 1e-6 < 1e-2 < _class_means_gap(mean, labels)
