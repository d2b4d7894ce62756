"""Sentence-pair classification (NLI, question answering): one label per pair of texts.

Canonical record: `{"id", "text_a", "text_b", "label"}`. Both segments are encoded together for
the sequence-classification head. The probing unit is the pair, dumped two ways: `joint` (the
pair encoded together, pooled at CLS for encoders, the last real token for decoders, the mean
for encoder–decoders, or as `extract.joint_pooling` says) and the paper's `separate` (each text
encoded apart, masked means concatenated). The control task shuffles the labels.

A pair reaches the model one way in every stage: :func:`encode` gives fine-tuning's and
scoring's features and the joint dump's batches, and ``tokenization.model_inputs`` of it is what
the model gets (token types where the model has them, the second text as segment 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.tasks.base import TaskType

SIDES = ("text_a", "text_b")


def encode(tokenizer: Any, record: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    """The pair of `record` encoded together, the same for fine-tuning, scoring and the dumps.

    `settings`: anything with ``max_length`` and ``pair_truncation`` (``TrainingSettings``,
    ``DumpSettings``: the dump's come from the training config). Returns
    ``tokenization.encode_pair``'s dict (model inputs and ``truncated_tokens``).
    """
    from bioprobe.tokenization import encode_pair

    return encode_pair(
        tokenizer,
        record["text_a"],
        record["text_b"],
        settings.max_length,
        settings.pair_truncation,
    )


class Pair(TaskType):
    name = "pair"
    formats = ("pairs-jsonl", "tsv", "hf")
    record_keys = ("text_a", "text_b", "label")
    unit = "pair"
    token_labels = False
    selection_metric = "macro_f1"
    peft_task_type = "SEQ_CLS"
    main_metric = "macro_f1"
    # NLI is not a BLURB task; a QA task (PubMedQA, BioASQ) says `blurb: question answering`
    blurb_metric = "accuracy"
    prompt_scheme = "choice"
    prompt_fields = ("text_a", "text_b")
    prompt_template = "Text 1: {text_a}\nText 2: {text_b}\nAnswer:"
    prompt_instruction = "Read the two texts and answer with one of: {options}."

    # --- data ---

    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        return list(cfg["labels"])

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        return sorted({r["label"] for r in records})

    def record(self, row, fields, fallback_id, check, cfg, names) -> dict:
        from bioprobe.data.readers import pair_record

        return pair_record(row, fields, fallback_id, check, names)

    def stratum(self, record: dict) -> tuple[str, ...]:
        return (record["label"],)

    def texts(self, record: dict) -> list[str]:
        return [record["text_a"], record["text_b"]]

    # --- model ---

    def auto_class(self) -> Any:
        import transformers

        return transformers.AutoModelForSequenceClassification

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> dict[str, Any]:
        """Both segments encoded together (:func:`encode`), as the sequence-classification
        head expects (token types included where the model has them); the features' labels
        are the class ids (`TaskType.build_features`)."""
        return encode(tokenizer, record, settings)

    def compute_metrics(self, labels: Sequence[str]):
        from bioprobe.metrics import classification_scores

        def compute(eval_pred) -> dict[str, float]:
            return classification_scores(eval_pred.label_ids, eval_pred.predictions)

        return compute

    def batch_predictions(self, logits, labels) -> list:
        return [int(p) for p in logits.argmax(-1)]

    def score_rows(self, labels, rows) -> dict:
        from bioprobe.metrics import classification_scores

        return classification_scores([r["gold"] for r in rows], [r["predicted"] for r in rows])

    def resampling(self, labels, rows):
        from bioprobe import bootstrap

        return bootstrap.classification(*class_ids(labels, rows), len(labels))

    # --- dumps ---

    def dump_width(self, settings) -> int:
        """The joint vector (H) and the separate one (2H), as `extract.pair_modes` asks."""
        return ("joint" in settings.pair_modes) + 2 * ("separate" in settings.pair_modes)

    def features_file(self, split: str, pair_mode: str) -> str:
        return f"{split}.{'separate' if pair_mode == 'separate' else 'hidden'}.npy"

    def dump(self, model, tokenizer, splits, out: Path, settings, is_decoder: bool):
        return dump_examples(model, tokenizer, splits, out, settings, is_decoder)


def class_ids(labels: Sequence[str], rows: Sequence[dict]) -> tuple[list[int], list[int]]:
    """The gold and predicted class ids of prediction rows of label names."""
    index = {label: i for i, label in enumerate(labels)}
    return [index[r["gold"]] for r in rows], [index[r["predicted"]] for r in rows]


def _label_units(records: Sequence[dict]) -> dict[str, list]:
    return {"labels": [r["label"] for r in records]}


def dump_examples(
    model: Any,
    tokenizer: Any,
    splits: dict[str, list[dict]],
    out: Path,
    settings: Any,
    is_decoder: bool,
    encoder: Callable[[Any, Mapping[str, Any], Any], dict[str, Any]] = encode,
    targets: Callable[[Sequence[dict]], dict[str, list]] = _label_units,
) -> tuple[dict[str, tuple[dict, dict]], list[int]]:
    """`TaskType.dump` for one vector per example: the `joint` vector of `encoder`'s encoding
    and, in `separate` mode, the two `SIDES` encoded apart. Each split's units are its `ids`
    plus `targets(records)` (pairs: the labels). Shared by the pair-unit types (pair,
    similarity: its scores) and by single texts (multilabel: one text, `joint` mode only)."""
    s = settings
    joint = {name: [encoder(tokenizer, r, s) for r in records] for name, records in splits.items()}
    attn = _write_pair_vectors(model, tokenizer, splits, joint, out, s, is_decoder)
    results = {}
    for name, records in splits.items():
        units = {"ids": [r["id"] for r in records], **targets(records)}
        stats = {
            "examples": len(records),
            "units": len(records),
            "truncated_examples": sum(e["truncated_tokens"] > 0 for e in joint[name]),
        }
        results[name] = (units, stats)
    return results, attn


def _write_pair_vectors(model, tokenizer, splits, joint, out: Path, s, is_decoder):
    """One forward stream over every split: the joint encoding (its vector and, for the
    attention set, its maps) and, in `separate` mode, each text encoded apart."""
    from bioprobe.analysis.extract import Stream
    from bioprobe.tokenization import encode_text

    lengths = {name: [len(e["input_ids"]) for e in es] for name, es in joint.items()}
    with Stream(model, out, s, lengths) as stream:
        segments = {}
        for name, records in splits.items():
            if "joint" in s.pair_modes:
                stream.writer(name, "hidden", len(records), stream.hidden)
            if "separate" in s.pair_modes:
                stream.writer(name, "separate", len(records), 2 * stream.hidden)
                segments[name] = [
                    [encode_text(tokenizer, r[key], s.max_length) for key in SIDES] for r in records
                ]
        for batch_items, maps in stream.batches():
            if "joint" in s.pair_modes or maps:
                _joint_batch(model, tokenizer, stream, joint, batch_items, maps, is_decoder)
            if "separate" in s.pair_modes:
                _separate_batch(model, tokenizer, stream, segments, batch_items)
    return stream.attention_set()


def _joint_batch(model, tokenizer, stream, joint, batch_items, maps: bool, is_decoder) -> None:
    from bioprobe.analysis.extract import as_dump_dtype, forward, pad
    from bioprobe.analysis.pooling import pool_pair_joint

    s = stream.s
    batch = pad(tokenizer, [joint[name][i] for name, i in batch_items])
    hs, attn = forward(model, batch, maps, s.virtual_tokens, s.layers)
    mask = batch["attention_mask"].to(hs.device)
    pooled = pool_pair_joint(hs, mask, s.joint_pooling, is_decoder, stream.encoder_decoder)
    vec = as_dump_dtype(pooled, s.dtype)
    for row, (name, i) in enumerate(batch_items):
        if "joint" in s.pair_modes:
            stream.writers[name, "hidden"].write(i, vec[:, row : row + 1])
        if maps:
            stream.attention(i, row, attn, batch["input_ids"])


def _separate_batch(model, tokenizer, stream, segments, batch_items) -> None:
    """The paper's `separate` mode: masked means of the two texts encoded apart, concatenated."""
    from bioprobe.analysis.extract import as_dump_dtype, forward, pad
    from bioprobe.analysis.pooling import pool_pair_separate

    s = stream.s
    sides = []
    for side in (0, 1):
        batch = pad(tokenizer, [segments[name][i][side] for name, i in batch_items])
        hs, _ = forward(model, batch, False, s.virtual_tokens, s.layers)
        sides += [hs, batch["attention_mask"].to(hs.device)]
    vec = as_dump_dtype(pool_pair_separate(*sides), s.dtype)
    for row, (name, i) in enumerate(batch_items):
        stream.writers[name, "separate"].write(i, vec[:, row : row + 1])
