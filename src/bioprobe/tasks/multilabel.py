"""Multi-label text classification (HoC): a text with any subset of N labels.

Canonical record: `{"id", "text", "labels": [label names], "document"}`. `document` groups
examples for BLURB's score: `tasks.<id>.document_id`, a regular expression with one group,
takes it from the id (HoC: `^(.+)_s\\d+$` turns the sentence id `PMID_sN` into the abstract's
PMID); without it every example is its own document. Labels are read from

- BLURB's HoC cell `0_1,1_0,...,9_0` (label k present iff v = 1): the names are the indices
  (`"0"` ... `"9"`) or, with `tasks.<id>.labels`, index k is `labels[k]`;
- a comma-separated list of names (a blank cell: none);
- a Hugging Face list of names or of class ids (named by the dataset's ClassLabel, else by
  `tasks.<id>.labels`, else the id as text).

The head is sequence classification with `problem_type="multi_label_classification"` (binary
cross-entropy over float multi-hot labels); a label is predicted when its sigmoid exceeds 0.5
(logit > 0, as LinkBERT). Scores: BLURB's `document_micro_f1` (predictions and gold merged per
document, then micro-F1 over every (document, label) cell: LinkBERT's `utils_hoc.py`), and per
example `micro_f1`, `macro_f1` and `accuracy` (the whole label set right). Model selection
uses the per-example `micro_f1`: the Trainer evaluates the validation split in length-grouped
order and shows `compute_metrics` no ids, so it cannot merge per document.

Subsets are stratified by the sorted label set (HoC: mostly the empty set, then single
hallmarks). The probing unit is the text, pooled like a pair's `joint` vector
(`extract.joint_pooling`: CLS for encoders, the last real token for decoders, or the mean)
into `{split}.hidden.npy`; the probe is one-vs-rest logistic regressions
(`probing.multilabel`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bioprobe.errors import ConfigError
from bioprobe.tasks.base import TaskType, head_logits
from bioprobe.tasks.pair import dump_examples

#: one item of BLURB's HoC label cell: label index `_` 0 or 1
INDEX_VALUE = re.compile(r"(\d+)_([01])")


def encode(tokenizer: Any, record: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    """The text of `record`, the same for fine-tuning, scoring and the dumps (`settings`:
    anything with ``max_length``): ``tokenization.encode_text``'s dict."""
    from bioprobe.tokenization import encode_text

    return encode_text(tokenizer, record["text"], settings.max_length)


def _index_name(index: int, names: Sequence[str] | None) -> str:
    from bioprobe.data.readers import RowProblem

    if names is None:
        return str(index)
    if not 0 <= index < len(names):
        raise RowProblem(
            f"label index {index} has no name ({len(names)} names: {', '.join(names)})"
        )
    return str(names[index])


def _cell_labels(cell: str, names: Sequence[str] | None) -> list[str]:
    """A text cell: BLURB's `k_v` items, or comma-separated names (blank: no label)."""
    from bioprobe.data.readers import RowProblem

    items = [item.strip() for item in cell.split(",")] if cell.strip() else []
    pairs = [INDEX_VALUE.fullmatch(item) for item in items]
    if items and all(pairs):
        indices = [int(m.group(1)) for m in pairs if m]
        if len(set(indices)) != len(indices):
            raise RowProblem(f"a label index appears twice in {cell!r}")
        return [_index_name(int(m.group(1)), names) for m in pairs if m and m.group(2) == "1"]
    if any(not item for item in items):
        raise RowProblem(f"an empty label name in {cell!r}")
    return items


def _list_labels(values: list, names: Sequence[str] | None) -> list[str]:
    """A list of names or class ids (a Hugging Face sequence feature)."""
    from bioprobe.data.readers import _class_name

    return [_class_name(value, names, "label") for value in values]


def parse_labels(value: Any, names: Sequence[str] | None) -> list[str]:
    """A source's label set as names (order kept); `names` names the class ids and the
    indices of `k_v` items. A problem is a `readers.RowProblem` (named by file and line)."""
    from bioprobe.data.readers import RowProblem

    if isinstance(value, str):
        labels = _cell_labels(value, names)
    elif isinstance(value, list | tuple):
        labels = _list_labels(list(value), names)
    else:
        raise RowProblem(f"labels must be text or a list, found {type(value).__name__}")
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise RowProblem(f"label {twice[0]!r} listed twice")
    return labels


def document_of(example_id: str, pattern: str | None) -> str:
    """The document an example belongs to: `pattern`'s group in its id (None: the id)."""
    from bioprobe.data.readers import RowProblem

    if pattern is None:
        return example_id
    match = re.fullmatch(pattern, example_id)
    if match is None:
        raise RowProblem(f"id {example_id!r} does not match the task's document_id {pattern!r}")
    return match.group(1)


def _label_units(records: Sequence[dict]) -> dict[str, list]:
    return {"labels": [r["labels"] for r in records]}


def multi_hot(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """[N, K] 0/1: row i has a 1 at each of its labels' positions in `labels`."""
    index = {name: k for k, name in enumerate(labels)}
    out = np.zeros((len(label_sets), len(labels)), dtype=np.int64)
    for row, names in enumerate(label_sets):
        out[row, [index[name] for name in names]] = 1
    return out


def _multi_hot_rows(labels: Sequence[str], rows: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The gold and predicted label sets of prediction rows, multi-hot [N, K] each."""
    return tuple(multi_hot([r[side] for r in rows], labels) for side in ("gold", "predicted"))


def _natural(name: str) -> tuple[int, int | str]:
    """Index names in numeric order ("2" before "10"), then any other names."""
    return (0, int(name)) if name.isdigit() else (1, name)


class MultiLabel(TaskType):
    name = "multilabel"
    formats = ("tsv", "hf")
    record_keys = ("text", "labels")
    unit = "text"
    token_labels = False
    selection_metric = "micro_f1"
    peft_task_type = "SEQ_CLS"
    main_metric = "document_micro_f1"
    probe_metric = "micro_f1"
    probe_kinds = ("linear",)  # one-vs-rest logistic regressions (probing.multilabel)
    sweep_probe = False  # one binary probe per label: no multiclass weight matrix to sweep
    blurb_category = "document classification"
    blurb_metric = "document_micro_f1"
    prompt_scheme = "per_label"
    prompt_fields = ("text",)
    prompt_template = "Text: {text}\nTopic: {label}\nAnswer:"
    prompt_instruction = "Is the text about the topic? Answer yes or no."

    # --- data ---

    def check_config(self, cfg: Mapping[str, Any], task_id: str) -> None:
        pattern = cfg.get("document_id")
        if pattern is None:
            return
        key = f"tasks.{task_id}.document_id"
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise ConfigError(f"not a regular expression: {exc}", key=key) from None
        if groups != 1:
            raise ConfigError(f"needs exactly one group (the document), has {groups}", key=key)

    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        return list(cfg["labels"])

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        return sorted({label for r in records for label in r["labels"]}, key=_natural)

    def record(self, row, fields, fallback_id, check, cfg, names) -> dict:
        from bioprobe.data.readers import _example_id, _field, _text

        example_id = _example_id(row, fields["id"], fallback_id)
        labels = parse_labels(_field(row, fields["labels"]), names or cfg.get("labels"))
        for label in labels:
            check(label)
        return {
            "id": example_id,
            "text": _text(row, fields["text"]),
            "labels": labels,
            "document": document_of(example_id, cfg.get("document_id")),
        }

    def stratum(self, record: dict) -> tuple[str, ...]:
        return tuple(sorted(record["labels"]))

    def texts(self, record: dict) -> list[str]:
        return [record["text"]]

    # --- model ---

    def auto_class(self) -> Any:
        import transformers

        return transformers.AutoModelForSequenceClassification

    def head_kwargs(self, labels: Sequence[str]) -> dict[str, Any]:
        """One output per label, trained with binary cross-entropy."""
        return {**super().head_kwargs(labels), "problem_type": "multi_label_classification"}

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> dict[str, Any]:
        """The text encoded alone (:func:`encode`)."""
        return encode(tokenizer, record, settings)

    def feature_labels(self, records, encodings, labels) -> list:
        """The label sets as float multi-hot rows (binary cross-entropy's targets)."""
        return multi_hot([r["labels"] for r in records], labels).astype(float).tolist()

    def compute_metrics(self, labels: Sequence[str]):
        """Per-example scores only: the Trainer shows no ids to merge documents by."""
        from bioprobe.metrics import multilabel_scores

        def compute(eval_pred) -> dict[str, float]:
            scores = multilabel_scores(eval_pred.label_ids, eval_pred.predictions)
            return {k: v for k, v in scores.items() if not k.startswith("document_")}

        return compute

    def logits_for_metrics(self, logits: Any, labels: Any) -> Any:
        return (head_logits(logits) > 0).long()  # sigmoid > 0.5

    def batch_predictions(self, logits, labels) -> list:
        return [row.nonzero().flatten().tolist() for row in logits > 0]

    def single_prediction(self, labels: Sequence[str], predicted: list) -> str | None:
        """The one label set predicted for every text (often no label at all), else None."""
        if not predicted or any(p != predicted[0] for p in predicted):
            return None
        return ", ".join(labels[i] for i in predicted[0]) or "no label"

    def prediction_rows(self, labels, records, predicted) -> list[dict]:
        """Label sets (names), with the document each example belongs to."""
        return [
            {
                "id": r["id"],
                "document": r["document"],
                "gold": list(r["labels"]),
                "predicted": [labels[i] for i in ids],
            }
            for r, ids in zip(records, predicted, strict=True)
        ]

    def score_rows(self, labels, rows) -> dict:
        from bioprobe.metrics import multilabel_scores

        return multilabel_scores(*_multi_hot_rows(labels, rows), [r["document"] for r in rows])

    def resampling(self, labels, rows):
        """Whole documents are drawn: BLURB's score merges a document's examples."""
        from bioprobe import bootstrap

        return bootstrap.multilabel(*_multi_hot_rows(labels, rows), [r["document"] for r in rows])

    # --- dumps and probes ---

    def features_file(self, split: str, pair_mode: str) -> str:
        return f"{split}.hidden.npy"

    def dump(self, model, tokenizer, splits, out: Path, settings, is_decoder: bool):
        """One vector per text, pooled as a pair's `joint` one (`extract.joint_pooling`)."""
        joint_only = replace(settings, pair_modes=("joint",))  # one text: nothing to separate
        return dump_examples(
            model, tokenizer, splits, out, joint_only, is_decoder, encode, _label_units
        )

    def probe_data(self, features, units, labels_info):
        from bioprobe.probing.multilabel import MultiLabelProbeData

        names = list(labels_info["labels"])
        return MultiLabelProbeData(
            features=features, targets=multi_hot(units["labels"], names), label_names=names
        )

    def probe(self, fit, score, kind, settings, seed, threads):
        """One-vs-rest linear probes (`probe.linear`), the control on shuffled label rows."""
        from bioprobe.probing.multilabel import probe_multilabel

        return probe_multilabel(
            fit,
            score,
            hyper=settings.hyper("linear"),
            targets=settings.targets,
            seed=seed,
            num_threads=threads,
            kind=kind,
            control_draws=settings.control_draws,
        )

    def probe_mdl(self, fit, score, settings, seed, threads):
        """MDL of the label sets: one online code per label (`probing.mdl`), summed."""
        from bioprobe.probing.mdl import mdl_multilabel_rows

        return mdl_multilabel_rows(
            fit,
            score,
            hyper=settings.hyper("linear"),
            targets=settings.targets,
            seed=seed,
            num_threads=threads,
            control_draws=settings.control_draws,
        )
