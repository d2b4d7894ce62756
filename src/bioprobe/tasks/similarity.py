"""Sentence similarity (BIOSSES): a pair of texts with a real-valued score, learned by regression.

Canonical record: `{"id", "text_a", "text_b", "score"}` (a finite float; BIOSSES: 0-4, the
mean of five annotators). There is no label set (`labels.json` has `labels: []` and
`target: score`); the head is one regression output (`problem_type="regression"`, MSE loss).
A pair reaches the model exactly as a `pair` task's does (`tasks.pair.encode`), and its dumps
are the pair's (`joint` and `separate` vectors, `tasks.pair.dump_examples`) with the scores as
targets. Scores: Pearson (BLURB's metric; model selection too), Spearman, MSE and R².

Subsets are stratified by score bin: the integer part of the score (BIOSSES: 0, 1, 2, 3, and 4
for the pairs scored 4.0 exactly), so every prefix keeps the spread of scores.

The probe (`linear` is the only kind that fits a real-valued target: a ridge regression here,
`probing.ridge`) is scored by Pearson; its control task shuffles the scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.tasks.base import TaskType, head_logits
from bioprobe.tasks.pair import SIDES, dump_examples, encode


def score_value(value: Any) -> float:
    """A source cell or field as a finite float (TSV text, a JSON or Arrow number); anything
    else is a `readers.RowProblem`, which the reader names by file and line (or row)."""
    from bioprobe.data.readers import RowProblem

    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowProblem(f"score must be a number, found {type(value).__name__}")
    try:
        score = float(value)
    except ValueError:
        raise RowProblem(f"score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise RowProblem(f"score {value!r} is not a finite number")
    return score


def _score_units(records: Sequence[dict]) -> dict[str, list]:
    return {"scores": [r["score"] for r in records]}


class Similarity(TaskType):
    name = "similarity"
    formats = ("tsv", "pairs-jsonl", "hf")
    record_keys = ("text_a", "text_b", "score")
    unit = "pair"
    token_labels = False
    selection_metric = "pearson"
    peft_task_type = "SEQ_CLS"
    main_metric = "pearson"
    probe_metric = "pearson"
    probe_kinds = ("linear",)  # a ridge regression (probing.ridge): no classifier fits a score
    mdl_probe = False  # an online code of real-valued scores is not implemented
    sweep_probe = False  # a ridge probe: its complexity is `probe.ridge.alphas`
    blurb_category = "sentence similarity"
    blurb_metric = "pearson"
    prompt_scheme = "scale"
    prompt_fields = ("text_a", "text_b")
    prompt_template = "Sentence 1: {text_a}\nSentence 2: {text_b}\nSimilarity:"
    prompt_instruction = (
        "Rate how similar the two sentences are in meaning, from 0 (unrelated) to 4 (equivalent)."
    )

    # --- data ---

    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        raise ConfigError("a similarity task has no label set (its target is the score)", key=key)

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        return []

    def label_info(self, cfg: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        return {**super().label_info(cfg, labels), "target": "score"}

    def record(self, row, fields, fallback_id, check, cfg, names) -> dict:
        from bioprobe.data.readers import _example_id, _field, _text

        return {
            "id": _example_id(row, fields["id"], fallback_id),
            "text_a": _text(row, fields["text_a"]),
            "text_b": _text(row, fields["text_b"]),
            "score": score_value(_field(row, fields["score"])),
        }

    def stratum(self, record: dict) -> tuple[str, ...]:
        return (str(math.floor(record["score"])),)

    def texts(self, record: dict) -> list[str]:
        return [record[side] for side in SIDES]

    # --- model ---

    def auto_class(self) -> Any:
        import transformers

        return transformers.AutoModelForSequenceClassification

    def head_kwargs(self, labels: Sequence[str]) -> dict[str, Any]:
        """One output, trained with the MSE loss."""
        return {"num_labels": 1, "problem_type": "regression"}

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> dict[str, Any]:
        """The pair encoded as a `pair` task's (`tasks.pair.encode`)."""
        return encode(tokenizer, record, settings)

    def feature_labels(self, records, encodings, labels) -> list:
        """The scores as float labels (the regression head's MSE target)."""
        return [float(r["score"]) for r in records]

    def compute_metrics(self, labels: Sequence[str]):
        from bioprobe.metrics import regression_scores

        def compute(eval_pred) -> dict[str, float]:
            return regression_scores(eval_pred.label_ids, eval_pred.predictions)

        return compute

    def logits_for_metrics(self, logits: Any, labels: Any) -> Any:
        return head_logits(logits)[..., 0]  # [B, 1] -> the predicted scores [B]

    def batch_predictions(self, logits, labels) -> list:
        return [float(v) for v in logits[..., 0]]

    def prediction_rows(self, labels, records, predicted) -> list[dict]:
        return [
            {"id": r["id"], "gold": r["score"], "predicted": p}
            for r, p in zip(records, predicted, strict=True)
        ]

    def score_rows(self, labels, rows) -> dict:
        from bioprobe.metrics import regression_scores

        return regression_scores([r["gold"] for r in rows], [r["predicted"] for r in rows])

    def resampling(self, labels, rows):
        from bioprobe import bootstrap

        return bootstrap.regression([r["gold"] for r in rows], [r["predicted"] for r in rows])

    # --- dumps and probes ---

    def dump_width(self, settings) -> int:
        """The joint vector (H) and the separate one (2H), as `extract.pair_modes` asks."""
        return ("joint" in settings.pair_modes) + 2 * ("separate" in settings.pair_modes)

    def features_file(self, split: str, pair_mode: str) -> str:
        return f"{split}.{'separate' if pair_mode == 'separate' else 'hidden'}.npy"

    def dump(self, model, tokenizer, splits, out: Path, settings, is_decoder: bool):
        return dump_examples(
            model, tokenizer, splits, out, settings, is_decoder, targets=_score_units
        )

    def probe_data(self, features, units, labels_info):
        from bioprobe.probing.ridge import RegressionProbeData

        return RegressionProbeData(features=features, targets=units["scores"])

    def probe(self, fit, score, kind, settings, seed, threads):
        """A ridge probe per layer (`probe.ridge.alphas`), its control on shuffled scores."""
        from bioprobe.probing.ridge import DEFAULT_ALPHAS, probe_regression

        return probe_regression(
            fit,
            score,
            alphas=settings.hyper("ridge").get("alphas", DEFAULT_ALPHAS),
            targets=settings.targets,
            seed=seed,
            num_threads=threads,
            kind=kind,
            control_draws=settings.control_draws,
        )
