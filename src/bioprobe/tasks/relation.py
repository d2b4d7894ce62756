"""Relation extraction (BLURB's ChemProt, DDI, GAD): one label per sentence whose two entities
are masked by placeholders (`@GENE$`, `@CHEMICAL$`, `@DISEASE$`, `@DRUG$`; `@CHEM-GENE$` where
ChemProt's two entities overlap).

Canonical record: `{"id", "text", "label"}`. The sentence is classified by the
sequence-classification head. The score is BLURB's: micro-F1 over the positive classes, every
class but `tasks.<id>.negative_label`, which is class id 0 (as in LinkBERT's `PRF1`).

The probing unit is the sentence, pooled by `extract.relation_pooling`: `entity` (the two
entities' first sub-tokens, concatenated: 2H), `cls` (the head's token: CLS for encoders, the
last real token for decoders, the encoder's mean for encoder–decoders) or `mean`. A sentence
without its two placeholders (or one that truncation cut off) is pooled at `cls` twice instead,
and counted (`placeholder_fallbacks`).
The control task shuffles the labels.

A sentence reaches the model one way in every stage: :func:`encode` (whitespace words, each
placeholder a word of its own, truncated at a word boundary) gives fine-tuning's and scoring's
features and the dump's batches, and ``tokenization.model_inputs`` of it is what the model gets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.tasks.base import TaskType

log = logging.getLogger("bioprobe.relation")

#: an entity placeholder (`@GENE$`); one whose name holds a dash (`@CHEM-GENE$`) stands for
#: both entities (ChemProt, where they overlap)
PLACEHOLDER = re.compile(r"@[A-Za-z][A-Za-z0-9_-]*\$")
_SPLIT = re.compile(f"({PLACEHOLDER.pattern})")
#: the class id of `negative_label` (`config_labels` and `labels_from_train` put it first)
NEGATIVE_ID = 0


def words(text: str) -> list[str]:
    """The sentence's whitespace-separated words, each placeholder split from what is attached
    to it (`(@GENE$),` -> `(`, `@GENE$`, `),`) so that it is a word of its own."""
    return [part for token in text.split() for part in _SPLIT.split(token) if part]


def entity_words(sentence: Sequence[str]) -> tuple[int, int] | None:
    """The word indices of the two entities: the first two placeholders, ordered by their name
    and then position (each slot holds the same role in every sentence: ChemProt chemical then
    gene, GAD disease then gene, DDI's two drugs in sentence order), or one combined placeholder
    (`@CHEM-GENE$`) twice. None when the sentence has neither."""
    found = [(word, i) for i, word in enumerate(sentence) if PLACEHOLDER.fullmatch(word)]
    if len(found) >= 2:
        (_, first), (_, second) = sorted(found[:2])
        return first, second
    if len(found) == 1 and "-" in found[0][0]:
        return found[0][1], found[0][1]
    return None


@dataclass(frozen=True)
class RelationEncoding:
    """One relation sentence, encoded (what :func:`tokenization.model_inputs` reads)."""

    input_ids: list[int]
    #: per sub-token, its segment (all 0) where the tokenizer uses token types, else None
    token_type_ids: list[int] | None
    #: words dropped at the end because the sentence did not fit into max_length
    truncated_words: int
    #: token index of each entity's first sub-token; None: a placeholder is missing or cut off
    entities: tuple[int, int] | None

    @property
    def attention_mask(self) -> list[int]:
        return [1] * len(self.input_ids)


def encode(tokenizer: Any, record: Mapping[str, Any], settings: Any) -> RelationEncoding:
    """The sentence of `record` as words (:func:`words`), truncated at a word boundary, with
    its entities located; the same for fine-tuning, scoring and the dumps (`settings`: anything
    with ``max_length``)."""
    from bioprobe.tokenization import encode_words

    sentence = words(record["text"])
    enc = encode_words(tokenizer, sentence, settings.max_length)
    slots = entity_words(sentence)
    entities = None
    if slots is not None and max(slots) < enc.n_words:
        entities = (enc.word_index.index(slots[0]), enc.word_index.index(slots[1]))
    return RelationEncoding(enc.input_ids, enc.token_type_ids, enc.truncated_words, entities)


def _negative_first(labels: Sequence[str], negative: str, where: str, key: str) -> list[str]:
    if negative not in labels:
        raise ConfigError(
            f"negative_label {negative!r} is not among {where} ({', '.join(labels)})", key=key
        )
    return [negative, *(label for label in labels if label != negative)]


class Relation(TaskType):
    name = "relation"
    formats = ("tsv", "hf")
    record_keys = ("text", "label")
    unit = "sentence"
    token_labels = False
    selection_metric = "positive_micro_f1"
    peft_task_type = "SEQ_CLS"
    main_metric = "positive_micro_f1"
    # beside it: all-positive predictions score 2p/(1 + p) on a binary set such as GAD (0.69)
    figure_metrics = ("macro_f1",)
    # the probes' headline (figures, summary): positive_micro_f1 and its selectivity are in every
    # probe row too, but a constant "association" scores 2p/(1 + p) on it (0.67 on balanced
    # GAD), above what a linear probe fitted on a few hundred sentences reaches; macro-F1 gives
    # a constant nothing for free and has a chance level
    probe_metric = "macro_f1"
    blurb_category = "relation extraction"
    blurb_metric = "positive_micro_f1"
    prompt_scheme = "choice"
    prompt_fields = ("text",)
    prompt_template = "Sentence: {text}\nAnswer:"
    prompt_instruction = (
        "Which relation does the sentence state between its marked entities? Answer with one "
        "of: {options}."
    )

    # --- data ---

    def check_config(self, cfg: Mapping[str, Any], task_id: str) -> None:
        if not cfg.get("negative_label"):
            raise ConfigError(
                "a relation task names its negative class (false for ChemProt, DDI-false for "
                "DDI, 0 for GAD): BLURB scores micro-F1 over the other classes",
                key=f"tasks.{task_id}.negative_label",
            )

    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        """The given labels with the negative class first (class id 0)."""
        return _negative_first(list(cfg["labels"]), cfg["negative_label"], "the labels", key)

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        """The negative class, then the training split's other labels, sorted."""
        found = sorted({r["label"] for r in records})
        return _negative_first(
            found, cfg["negative_label"], "the training split's labels", "negative_label"
        )

    def label_info(self, cfg: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        return {"label_scheme": None, "entity_types": [], "negative_label": labels[NEGATIVE_ID]}

    def record(self, row, fields, fallback_id, check, cfg, names) -> dict:
        from bioprobe.data.readers import _class_name, _example_id, _field, _text

        record = {
            "id": _example_id(row, fields["id"], fallback_id),
            "text": _text(row, fields["text"]),
            "label": _class_name(_field(row, fields["label"]), names, "label").strip(),
        }
        check(record["label"])
        return record

    def stratum(self, record: dict) -> tuple[str, ...]:
        return (record["label"],)

    def texts(self, record: dict) -> list[str]:
        return [" ".join(words(record["text"]))]

    # --- model ---

    def auto_class(self) -> Any:
        import transformers

        return transformers.AutoModelForSequenceClassification

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> RelationEncoding:
        """The sentence as words (:func:`encode`) for the sequence-classification head; the
        features' labels are the class ids (`TaskType.build_features`)."""
        return encode(tokenizer, record, settings)

    def compute_metrics(self, labels: Sequence[str]):
        from bioprobe.metrics import classification_scores, positive_class_scores

        def compute(eval_pred) -> dict[str, float]:
            gold, pred = eval_pred.label_ids, eval_pred.predictions
            return classification_scores(gold, pred) | positive_class_scores(
                gold, pred, NEGATIVE_ID
            )

        return compute

    def batch_predictions(self, logits, labels) -> list:
        return [int(p) for p in logits.argmax(-1)]

    def score_rows(self, labels, rows) -> dict:
        """Accuracy, macro-F1 (and `micro_f1`, which equals accuracy with one label per
        sentence) and BLURB's positive-class precision, recall and `positive_micro_f1`."""
        from bioprobe.metrics import classification_scores, positive_class_scores

        gold = [r["gold"] for r in rows]
        pred = [r["predicted"] for r in rows]
        return classification_scores(gold, pred) | positive_class_scores(
            gold, pred, labels[NEGATIVE_ID]
        )

    def resampling(self, labels, rows):
        from bioprobe import bootstrap
        from bioprobe.tasks.pair import class_ids

        return bootstrap.classification(*class_ids(labels, rows), len(labels), NEGATIVE_ID)

    # --- dumps and probes ---

    def dump_width(self, settings) -> int:
        return 2 if settings.relation_pooling == "entity" else 1  # two entity vectors

    def features_file(self, split: str, pair_mode: str) -> str:
        return f"{split}.hidden.npy"

    def dump(self, model, tokenizer, splits, out: Path, settings, is_decoder: bool):
        encs = self.encode_splits(tokenizer, splits, settings)
        attn = _write_sentence_vectors(model, tokenizer, encs, out, settings, is_decoder)
        results = {}
        for name, records in splits.items():
            units = {"ids": [r["id"] for r in records], "labels": [r["label"] for r in records]}
            results[name] = (units, _stats(name, encs[name], settings.relation_pooling))
        return results, attn

    def extra_probe_scores(self):
        """BLURB's `positive_micro_f1` in every classification probe's rows (and its
        selectivity)."""
        return _probe_scores


def _probe_scores(gold, pred) -> dict[str, float]:
    from bioprobe.metrics import positive_class_scores

    return {
        "positive_micro_f1": positive_class_scores(gold, pred, NEGATIVE_ID)["positive_micro_f1"]
    }


def _write_sentence_vectors(model, tokenizer, encs, out: Path, s, is_decoder):
    """One forward stream over every split: each sentence's vector (and, for the attention
    set, its maps) at its row."""
    import torch

    from bioprobe.analysis.extract import Stream, as_dump_dtype, forward, pad
    from bioprobe.analysis.pooling import pool_relation

    lengths = {name: [len(e.input_ids) for e in es] for name, es in encs.items()}
    width = 2 if s.relation_pooling == "entity" else 1
    with Stream(model, out, s, lengths) as stream:
        for name, es in encs.items():
            stream.writer(name, "hidden", len(es), width * stream.hidden)
        for batch_items, maps in stream.batches():
            batch_encs = [encs[name][i] for name, i in batch_items]
            batch = pad(tokenizer, batch_encs)
            hidden_states, attn = forward(model, batch, maps, s.virtual_tokens, s.layers)
            positions = torch.tensor([e.entities or (-1, -1) for e in batch_encs])
            mask = batch["attention_mask"].to(hidden_states.device)
            pooled = pool_relation(
                hidden_states,
                mask,
                positions,
                s.relation_pooling,
                is_decoder,
                stream.encoder_decoder,
            )
            vectors = as_dump_dtype(pooled, s.dtype)
            for row, (name, i) in enumerate(batch_items):
                stream.writers[name, "hidden"].write(i, vectors[:, row : row + 1])
                if maps:
                    stream.attention(i, row, attn, batch["input_ids"])
    return stream.attention_set()


def _stats(split: str, encs: Sequence[RelationEncoding], pooling: str) -> dict:
    """Counts of the split's dump; a sentence pooled at cls for want of its placeholders is
    said in the log too."""
    fallbacks = sum(e.entities is None for e in encs) if pooling == "entity" else 0
    if fallbacks:
        log.warning(
            "%s: %d of %d sentences lack their two entity placeholders (or lost one to "
            "truncation): pooled at cls instead of the entities",
            split,
            fallbacks,
            len(encs),
        )
    return {
        "examples": len(encs),
        "units": len(encs),
        "truncated_examples": sum(e.truncated_words > 0 for e in encs),
        "placeholder_fallbacks": fallbacks,
    }
