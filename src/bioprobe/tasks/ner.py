"""Named-entity recognition: IOB2 tags per word, scored at the entity level.

Canonical record: `{"id", "tokens": [str], "tags": [str]}`. The first sub-token of each word
carries the word's tag (-100 elsewhere); predictions are read there, and words cut off by
`max_length` are predicted `O` (and counted), so gold entities never leave the denominator.
The probing unit is the word: each word's vector pooled from its sub-tokens (first, mean or
last); the control task gives every word type a random label (Hewitt & Liang 2019).

A sentence reaches the model one way in every stage: :func:`encode` (word-split, one segment)
gives fine-tuning's and scoring's features and the dump's batches, and
``tokenization.model_inputs`` of it is what the model gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioprobe.errors import ConfigError
from bioprobe.tasks.base import TaskType

#: the config's `label_scheme` values: `bio` keeps the tags, `type` collapses them to entity
#: types (the paper's JNLPBA), `single` merges every type into one (`B-ENTITY`, BLURB's JNLPBA)
LABEL_SCHEMES = ("bio", "type", "single")


def encode(tokenizer: Any, record: Mapping[str, Any], settings: Any) -> Any:
    """The sentence of `record`, word-split and truncated at a word boundary, the same for
    fine-tuning, scoring and the dumps (`settings`: anything with ``max_length``). Returns a
    ``tokenization.WordEncoding``."""
    from bioprobe.tokenization import encode_words

    return encode_words(tokenizer, record["tokens"], settings.max_length)


def entity_types(labels: Sequence[str]) -> list[str]:
    from bioprobe.data.readers import tag_type

    return sorted({tag_type(label) for label in labels} - {"O"})


class NER(TaskType):
    name = "ner"
    formats = ("bio-tsv", "hf")
    record_keys = ("tokens", "tags")
    unit = "word"
    token_labels = True
    selection_metric = "entity_f1"
    peft_task_type = "TOKEN_CLS"
    main_metric = "entity_f1"
    figure_metrics = ("token_macro_f1",)  # the paper's token-level score
    probe_kinds = ("linear", "svc", "mlp", "bilstm-crf")
    blurb_category = "named entity recognition"
    blurb_metric = "entity_f1"
    prompt_scheme = "mentions"
    prompt_fields = ("text",)  # the words joined by spaces
    prompt_template = "Sentence: {text}\n{entity} mentions:"
    prompt_instruction = (
        "List the {entity} mentions in the sentence, separated by semicolons; answer none if "
        "there is none."
    )

    # --- data ---

    def check_config(self, cfg: Mapping[str, Any], task_id: str) -> None:
        if cfg["label_scheme"] not in LABEL_SCHEMES:
            raise ConfigError(
                f"must be one of {', '.join(LABEL_SCHEMES)}", key=f"tasks.{task_id}.label_scheme"
            )

    def tag_scheme(self, cfg: Mapping[str, Any]) -> str:
        """The scheme the readers apply to the source's tags (`readers.convert_tag`)."""
        return cfg["label_scheme"]

    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        from bioprobe.data.readers import convert_tag, is_iob2

        given = cfg["labels"]
        if "O" not in given:
            raise ConfigError("an NER label set must contain 'O'", key=key)
        scheme = self.tag_scheme(cfg)
        out: list[str] = []
        for label in given:
            # `type` also takes bare types; every other scheme reads IOB2 tags
            if scheme != "type" and not is_iob2(label):
                raise ConfigError(f"{label!r} is not an IOB2 tag (O, B-TYPE, I-TYPE)", key=key)
            try:
                collapsed = convert_tag(label, scheme)
            except ValueError as exc:  # the io scheme's B- tag
                raise ConfigError(str(exc), key=key) from None
            if collapsed not in out:
                out.append(collapsed)
        return out

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        """O, then B-T, I-T (or T under the `type` scheme) per entity type, sorted."""
        from bioprobe.data.readers import tag_type

        types = sorted({tag_type(t) for r in records for t in r["tags"]} - {"O"})
        if cfg["label_scheme"] == "type":
            return ["O", *types]
        return ["O", *(f"{prefix}-{t}" for t in types for prefix in "BI")]

    def label_info(self, cfg: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        return {"label_scheme": cfg["label_scheme"], "entity_types": entity_types(labels)}

    def record(self, row, fields, fallback_id, check, cfg, names) -> dict:
        from bioprobe.data.readers import ner_record

        return ner_record(row, fields, fallback_id, check, self.tag_scheme(cfg), names)

    def stratum(self, record: dict) -> tuple[str, ...]:
        """The sorted set of entity types present (`()`: no entity)."""
        from bioprobe.data.readers import tag_type

        return tuple(sorted({tag_type(tag) for tag in record["tags"]} - {"O"}))

    def texts(self, record: dict) -> list[str]:
        return [" ".join(record["tokens"])]

    # --- model ---

    def auto_class(self) -> Any:
        import transformers

        return transformers.AutoModelForTokenClassification

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> Any:
        """Word-split encoding (:func:`encode`)."""
        return encode(tokenizer, record, settings)

    def feature_labels(self, records, encodings, labels) -> list:
        """The first sub-token of each kept word carries its tag's id (-100 elsewhere)."""
        from bioprobe.tokenization import align_labels

        label2id = {label: i for i, label in enumerate(labels)}
        return [
            align_labels(enc.word_index, [label2id[t] for t in rec["tags"][: enc.n_words]])
            for rec, enc in zip(records, encodings, strict=True)
        ]

    def collator(self, tokenizer: Any, pad_to_multiple_of: int | None) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def tag_scores(
        self, labels: Sequence[str], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
    ) -> dict[str, float]:
        """Scores of sentences of tags, for model selection and `score` alike: seqeval entity
        scores and the paper's token-level ones."""
        from bioprobe.metrics import ner_scores

        return ner_scores(gold, pred)

    def compute_metrics(self, labels: Sequence[str]):
        def compute(eval_pred) -> dict[str, float]:
            preds, gold = eval_pred.predictions, eval_pred.label_ids
            keep = gold != -100
            g = [[labels[t] for t in row[m]] for row, m in zip(gold, keep, strict=True)]
            p = [[labels[t] for t in row[m]] for row, m in zip(preds, keep, strict=True)]
            return self.tag_scores(labels, g, p)

        return compute

    def batch_predictions(self, logits, labels) -> list:
        # prompt methods prepend virtual tokens: the real tokens are the last positions
        pred = logits[:, logits.shape[1] - labels.shape[1] :].argmax(-1)
        return [pred[row][labels[row] != -100].tolist() for row in range(pred.shape[0])]

    def prediction_rows(self, labels, records, predicted) -> list[dict]:
        """Each sentence's gold and predicted tags; words cut off by `max_length` are
        predicted `O`."""
        return [
            {
                "id": r["id"],
                "gold": list(r["tags"]),
                "predicted": [labels[t] for t in ids] + ["O"] * (len(r["tags"]) - len(ids)),
            }
            for r, ids in zip(records, predicted, strict=True)
        ]

    def score_rows(self, labels, rows) -> dict:
        return self.tag_scores(labels, [r["gold"] for r in rows], [r["predicted"] for r in rows])

    def resampling(self, labels, rows):
        """Whole sentences are drawn: an entity never crosses one."""
        from bioprobe import bootstrap

        return bootstrap.tags([r["gold"] for r in rows], [r["predicted"] for r in rows])

    # --- dumps ---

    def features_file(self, split: str, pair_mode: str) -> str:
        return f"{split}.hidden.npy"

    def dump(self, model, tokenizer, splits, out: Path, settings, is_decoder: bool):
        encs = self.encode_splits(tokenizer, splits, settings)
        starts = {  # each sentence's first row in its split's dump
            name: np.concatenate([[0], np.cumsum([e.n_words for e in es])]).astype(np.int64)
            for name, es in encs.items()
        }
        attn = _write_word_vectors(model, tokenizer, encs, starts, out, settings)
        results = {
            name: (_word_units(records, encs[name]), _word_stats(encs[name], starts[name]))
            for name, records in splits.items()
        }
        return results, attn


def _write_word_vectors(model, tokenizer, encs, starts, out: Path, s):
    """One forward stream over every split; each word's pooled vector at its row."""
    import torch

    from bioprobe.analysis.extract import Stream, as_dump_dtype, forward, pad
    from bioprobe.analysis.pooling import word_pool

    lengths = {name: [len(e.input_ids) for e in es] for name, es in encs.items()}
    with Stream(model, out, s, lengths) as stream:
        for name in encs:
            stream.writer(name, "hidden", int(starts[name][-1]), stream.hidden)
        for batch_items, maps in stream.batches():
            batch_encs = [encs[name][i] for name, i in batch_items]
            batch = pad(tokenizer, batch_encs)
            hidden_states, attn = forward(model, batch, maps, s.virtual_tokens, s.layers)
            word_index = torch.full(batch["input_ids"].shape, -1, dtype=torch.long)
            for row, e in enumerate(batch_encs):
                word_index[row, : len(e.word_index)] = torch.tensor(e.word_index)
            pooled = word_pool(
                hidden_states.cpu(),
                word_index,
                [e.n_words for e in batch_encs],
                mode=s.word_pooling,
            )
            vectors = as_dump_dtype(pooled.vectors, s.dtype)
            for row, (name, i) in enumerate(batch_items):
                lo, hi = int(pooled.offsets[row]), int(pooled.offsets[row + 1])
                stream.writers[name, "hidden"].write(int(starts[name][i]), vectors[:, lo:hi])
                if maps and attn is not None:
                    stream.attention(i, row, attn, batch["input_ids"])
    return stream.attention_set()


def _word_units(records: Sequence[dict], encs: Sequence[Any]) -> dict:
    """The kept words' labels, per-sentence counts and lowercased forms (the control task)."""
    n_words = [e.n_words for e in encs]
    return {
        "ids": [r["id"] for r in records],
        "sentence_lengths": n_words,
        "labels": [t for r, n in zip(records, n_words, strict=True) for t in r["tags"][:n]],
        "word_types": [
            w.lower() for r, n in zip(records, n_words, strict=True) for w in r["tokens"][:n]
        ],
    }


def _word_stats(encs: Sequence[Any], starts: np.ndarray) -> dict:
    return {
        "examples": len(encs),
        "units": int(starts[-1]),
        "truncated_examples": sum(e.truncated_words > 0 for e in encs),
        "truncated_words": sum(e.truncated_words for e in encs),
    }
