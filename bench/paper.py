"""The paper's method (Bonfigli et al. 2024, github.com/agnesebonfigli99/LLMs), re-implemented
faithfully where it decides speed, so that bioprobe can be timed against it side by side.

What is kept from the paper's scripts, on purpose:
- NER fine-tuning: every sentence tokenized in `__getitem__`, padded to max_length 128, batches
  of 4, shuffled, AdamW at a constant learning rate, a plain Python loop.
- pair fine-tuning: the whole set tokenized at once with `padding=True` (every pair padded to the
  longest), batch size 1, no shuffle, Adam at a constant learning rate, a plain loop.
- analysis: features one layer at a time, as the scripts' `get_entity_embeddings_mean(...,
  layer_num)` (NER) and `get_embeddings` (pairs) read one layer of `hidden_states` per call: a
  full forward pass per layer. NER: batch size 1, per-word mean pooling in Python; pairs:
  batches of 32 padded to the longest, each text alone, the model built with
  `output_attentions=True` as the scripts loaded it. One probe per layer fitted after the other.
  For attention, a second pass of both models per example and a Python loop over layers x heads
  calling scikit-learn's `cosine_similarity` on each flattened map.

What is fixed, so that both sides compute the same numbers (the speed comparison stays fair and
the values can be checked against each other): the decoders' `pad_token_id` is set, labels and
word vectors use the same word alignment as bioprobe (`encode_words`), pair means leave the
padding out (the scripts averaged it in), and the probes are the same estimators with the same
hyper-parameters, fitted on the same splits. The scripts' syntax and name errors are of course
not reproduced.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics.pairwise import cosine_similarity
from torch.utils.data import DataLoader, Dataset, TensorDataset
from transformers import set_seed

from bioprobe.probing import make_probe
from bioprobe.probing.run import bio_to_type
from bioprobe.tokenization import encode_text, encode_words

KEYS = ("text_a", "text_b")  # premise and hypothesis (question and context)


class _PaddedNerDataset(Dataset):
    """The paper's CustomDataset: tokenize on access, pad to max_length, label first sub-tokens."""

    def __init__(self, records, tokenizer, label2id, max_length):
        self.records, self.tokenizer = records, tokenizer
        self.label2id, self.max_length = label2id, max_length

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        rec = self.records[index]
        enc = self.tokenizer(
            rec["tokens"],
            is_split_into_words=True,
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
        )
        labels, previous = [], None
        for word in enc.word_ids():
            first = word is not None and word != previous
            labels.append(self.label2id[rec["tags"][word]] if first else -100)
            previous = word
        return {
            "input_ids": torch.tensor(enc["input_ids"]),
            "attention_mask": torch.tensor(enc["attention_mask"]),
            "labels": torch.tensor(labels),
        }


def _loop(model, loader, optimizer, epochs: int, unpack) -> float:
    """The paper's training loop; returns its wall time in seconds."""
    device = model.device
    model.train()
    started = time.monotonic()
    for _ in range(epochs):
        for batch in loader:
            inputs = {k: v.to(device) for k, v in unpack(batch).items()}
            loss = model(**inputs).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.monotonic() - started


def finetune_ner(
    model, tokenizer, records, labels, *, lr, epochs, seed, max_length=128, batch_size=4
) -> float:
    """NER as in NER/fine_tuning.py; returns the training wall time (s)."""
    set_seed(seed)
    data = _PaddedNerDataset(records, tokenizer, {t: i for i, t in enumerate(labels)}, max_length)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    return _loop(model, loader, optimizer, epochs, lambda b: b)


def finetune_pair(model, tokenizer, records, labels, *, lr, epochs, seed, max_length) -> float:
    """Pairs as in NLI/fine_tuning.py (batch size 1); returns the training wall time (s)."""
    set_seed(seed)
    enc = tokenizer(
        [r["text_a"] for r in records],
        [r["text_b"] for r in records],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    y = torch.tensor([labels.index(r["label"]) for r in records])
    loader = DataLoader(TensorDataset(enc["input_ids"], enc["attention_mask"], y), batch_size=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def unpack(batch):
        ids, mask, label = batch
        return {"input_ids": ids, "attention_mask": mask, "labels": label}

    return _loop(model, loader, optimizer, epochs, unpack)


# --------------------------------------------------------------------------------------------
# analysis


@torch.inference_mode()
def word_vectors(model, tokenizer, records, max_length: int) -> list[np.ndarray]:
    """Per sentence [L+1, n_words, H]: for each layer, one batch-1 forward pass per sentence
    (the scripts read one layer per pass), per-word means in Python."""
    encs = [encode_words(tokenizer, rec["tokens"], max_length) for rec in records]
    n_layers = model.config.num_hidden_layers + 1
    out = [np.zeros((n_layers, e.n_words, model.config.hidden_size), np.float32) for e in encs]
    for layer in range(n_layers):
        for enc, sentence in zip(encs, out, strict=True):
            ids = torch.tensor([enc.input_ids], device=model.device)
            states = model(input_ids=ids, output_hidden_states=True).hidden_states[layer]
            states = states[0].float().cpu().numpy()
            for word in range(enc.n_words):
                pieces = [states[t] for t, w in enumerate(enc.word_index) if w == word]
                sentence[layer, word] = np.mean(pieces, axis=0)
    return out


def probe_layers_ner(
    fit_vectors: Sequence[np.ndarray],
    fit_records,
    score_vectors: Sequence[np.ndarray],
    score_records,
    label_names: Sequence[str],
    hyper: dict,
    seed: int,
) -> list[np.ndarray]:
    """One BiLSTM-CRF per layer, fitted one after the other; predictions per layer (flat)."""
    index = {name: i for i, name in enumerate(label_names)}

    def labels_of(records, vectors):
        flat = [
            index[t] for r, v in zip(records, vectors, strict=True) for t in r["tags"][: v.shape[1]]
        ]
        _, typed = bio_to_type(label_names, np.array(flat))
        return typed, [v.shape[1] for v in vectors]

    y_fit, fit_lengths = labels_of(fit_records, fit_vectors)
    y_fit_sent = np.split(y_fit, np.cumsum(fit_lengths)[:-1])
    preds = []
    for layer in range(fit_vectors[0].shape[0]):
        probe = make_probe("bilstm-crf", **hyper, random_state=seed)
        probe.fit([v[layer] for v in fit_vectors], y_fit_sent)
        preds.append(np.concatenate(probe.predict([v[layer] for v in score_vectors])))
    return preds


@torch.inference_mode()
def pair_vectors(model, tokenizer, records, max_length: int, batch_size: int = 32) -> np.ndarray:
    """[L+1, N, 2H]: for each layer, premise and hypothesis each through the model alone in
    batches of 32 padded to the longest, attention maps returned as the scripts' models did,
    mean over the real tokens, concatenated (the paper's NLI probing features)."""
    n_layers = model.config.num_hidden_layers + 1
    out = np.zeros((n_layers, len(records), 2 * model.config.hidden_size), np.float32)
    texts = {k: [encode_text(tokenizer, r[k], max_length) for r in records] for k in KEYS}
    for layer in range(n_layers):
        for lo in range(0, len(records), batch_size):
            halves = []
            for key in KEYS:
                chunk = [{"input_ids": e["input_ids"]} for e in texts[key][lo : lo + batch_size]]
                batch = tokenizer.pad(chunk, return_tensors="pt").to(model.device)
                hidden = model(
                    **batch, output_hidden_states=True, output_attentions=True
                ).hidden_states[layer]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                halves.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
            out[layer, lo : lo + batch_size] = np.concatenate(halves, axis=-1)
    return out


def probe_layers_svc(x_fit, y_fit, x_score, hyper: dict, seed: int) -> list[np.ndarray]:
    """One SVC per layer, fitted one after the other; predictions per layer."""
    preds = []
    for layer in range(x_fit.shape[0]):
        probe = make_probe("svc", **hyper, random_state=seed)
        preds.append(probe.fit(x_fit[layer], y_fit).predict(x_score[layer]))
    return preds


@torch.inference_mode()
def attention_cosine(model_a, model_b, encodings: Sequence[dict]) -> np.ndarray:
    """Mean over examples (dicts of input_ids, maybe token_type_ids) of the per-head cosine
    similarity of the flattened maps: [L, heads].

    Both models see each example again here (the paper's attention script ran apart from its
    probing script), one example at a time, and every head goes through scikit-learn.
    """
    total = None
    for enc in encodings:
        inputs = {
            k: torch.tensor([enc[k]], device=model_a.device)
            for k in ("input_ids", "token_type_ids")
            if k in enc
        }
        att_a = model_a(**inputs, output_attentions=True).attentions
        att_b = model_b(**inputs, output_attentions=True).attentions
        n_layers, n_heads = len(att_a), att_a[0].shape[1]
        if total is None:
            total = np.zeros((n_layers, n_heads))
        for layer in range(n_layers):
            for head in range(n_heads):
                a = att_a[layer][0, head].float().cpu().numpy().flatten()
                b = att_b[layer][0, head].float().cpu().numpy().flatten()
                total[layer, head] += cosine_similarity([a], [b])[0][0]
    return total / len(encodings)
