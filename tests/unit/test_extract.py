"""Dumps (bioprobe.analysis.extract): batch order, and all splits in one forward stream."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from bioprobe import tasks
from bioprobe.analysis.extract import (
    ATTENTION_BATCH,
    DumpSettings,
    _batches,
    _examples,
    extract,
    pad,
)
from bioprobe.errors import BioprobeError
from bioprobe.tokenization import load_tokenizer, model_inputs


def test_dump_batches_run_longest_first_with_the_attention_set_apart():
    lengths = [5, 9, 2, 7, 7, 1, 8, 3, 6]
    batches = _batches(lengths, batch_size=2, first=3)
    # the attention set (examples 0-2) first, then the rest; each longest first
    assert batches == [[1, 0], [2], [6, 3], [4, 8], [7, 5]]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every example exactly once
    rest = [lengths[i] for i in flat[3:]]
    assert rest == sorted(rest, reverse=True)


def test_the_attention_set_batches_at_most_attention_batch_examples():
    batches = _batches(list(range(40)), batch_size=32, first=20)
    assert [len(b) for b in batches] == [ATTENTION_BATCH, ATTENTION_BATCH, 4, 20]


def test_examples_of_all_splits_in_one_list_with_the_attention_set_first():
    items = _examples({"validation": 3, "test": 4}, "test", 2)
    assert items[:2] == [("test", 0), ("test", 1)]
    assert sorted(items) == sorted(
        [("validation", i) for i in range(3)] + [("test", i) for i in range(4)]
    )


def _records(task_type: str, corpus: list[str]) -> list[dict]:
    out = []
    for i, sentence in enumerate(corpus):
        words = sentence.split()[: 4 + i % 9]  # lengths 4-12: batches mix lengths
        if task_type == "ner":
            tags = ["B-X" if w[0].isupper() else "O" for w in words]
            out.append({"id": f"s{i}", "tokens": words, "tags": tags})
        else:
            half = len(words) // 2
            text_a, text_b = " ".join(words[:half]), " ".join(words[half:])
            out.append({"id": f"p{i}", "text_a": text_a, "text_b": text_b, "label": "yes"})
    return out


@pytest.mark.parametrize("task_type", ["ner", "pair"])
def test_splits_dumped_together_equal_each_split_dumped_alone(
    task_type, tiny_bert_dir, bio_corpus, tmp_path, one_torch_thread
):
    """Batches mix the splits' examples; every vector still lands in its own split's row."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir, attn_implementation="eager")
    records = _records(task_type, bio_corpus[:16])
    splits = {"validation": records[:9], "test": records[9:]}
    settings = DumpSettings(batch_size=4, attention_max_examples=3, dtype="float32")

    def dump(which: dict, name: str) -> Path:
        out = tmp_path / name
        extract(
            model=model,
            tokenizer=tokenizer,
            task_type=task_type,
            splits=which,
            settings=settings,
            out_dir=out,
            provenance={},
        )
        return out

    together = dump(splits, "together")
    apart = {split: dump({split: recs}, split) for split, recs in splits.items()}
    files = ("hidden",) if task_type == "ner" else ("hidden", "separate")
    for split, alone in apart.items():
        for file in files:
            a = np.load(together / f"{split}.{file}.npy")
            b = np.load(alone / f"{split}.{file}.npy")
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)
        units = json.loads((together / f"{split}.units.json").read_text())
        assert units == json.loads((alone / f"{split}.units.json").read_text())
    meta = json.loads((together / "meta.json").read_text())
    assert meta["attention"] == json.loads((apart["test"] / "meta.json").read_text())["attention"]
    assert meta["attention"]["n_examples"] == 3
    np.testing.assert_allclose(
        np.load(together / "attention.npy"), np.load(apart["test"] / "attention.npy"), atol=1e-6
    )


@pytest.mark.parametrize("task_type", ["ner", "pair"])
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_dump_batches_are_padded_as_the_training_collator_pads(
    task_type, family, request, bio_corpus
):
    """The same encodings give the same tensors in a dump batch as in a training batch."""
    from bioprobe.tasks import ner, pair

    tokenizer = load_tokenizer(str(request.getfixturevalue(f"tiny_{family}_dir")))
    encode = {"ner": ner.encode, "pair": pair.encode}[task_type]
    settings = DumpSettings(max_length=12)  # some examples truncated
    encodings = [encode(tokenizer, r, settings) for r in _records(task_type, bio_corpus[:8])]
    batch = pad(tokenizer, encodings)
    collated = tasks.get(task_type).collator(tokenizer, None)([model_inputs(e) for e in encodings])
    assert list(batch) == list(collated)
    assert ("token_type_ids" in batch) == (family == "bert")
    for key, value in batch.items():
        assert torch.equal(value, collated[key]), key


def test_pad_refuses_a_batch_mixing_token_types():
    tokenizer = type("Tok", (), {"pad_token_id": 0})()
    with_types = {"input_ids": [5, 6], "attention_mask": [1, 1], "token_type_ids": [0, 1]}
    without = {"input_ids": [5], "attention_mask": [1]}
    with pytest.raises(BioprobeError, match="token types"):
        pad(tokenizer, [with_types, without])
