"""The interface a task type implements: what every stage asks of it.

A task type knows its canonical record (the keys `prepare_task` writes), how records are read
from a Hugging Face row and validated, how its label set is built, how a record becomes model
features and labels, which head it needs, how predictions are scored, what its probing unit is
and how a variant's hidden states are pooled to those units in a dump. Stages hold no
knowledge of any type: they call these methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # heavy imports only where a method needs them
    from bioprobe.analysis.extract import AttentionSet, DumpSettings
    from bioprobe.bootstrap import Resampling
    from bioprobe.data.readers import LabelCheck
    from bioprobe.training.features import FeatureSet


class TaskType(ABC):
    """One task type (`tasks.<id>.type`). Instances are stateless singletons (see REGISTRY)."""

    #: the config name (`type: ner`)
    name: ClassVar[str]
    #: raw formats (`tasks.<id>.format`) that can hold this type
    formats: ClassVar[tuple[str, ...]]
    #: the canonical record's keys besides `id`, as `prepare_task` writes them
    record_keys: ClassVar[tuple[str, ...]]
    #: the probing unit: `word` (a row per word) or `pair`, `sentence` ... (a row per example)
    unit: ClassVar[str]
    #: labels per token (a token-classification head) rather than one per example
    token_labels: ClassVar[bool]
    #: the validation metric that selects the best checkpoint
    selection_metric: ClassVar[str]
    #: peft's task type for adapters (`peft.TaskType` member name)
    peft_task_type: ClassVar[str]
    #: the headline downstream score (figures, summary, correlations)
    main_metric: ClassVar[str]
    #: more downstream scores the downstream figure draws beside the headline (and BLURB's)
    figure_metrics: ClassVar[tuple[str, ...]] = ()
    #: the headline probe score (figures, summary)
    probe_metric: ClassVar[str] = "macro_f1"
    #: the probe kinds that fit this type's targets (others are skipped, with a log line)
    probe_kinds: ClassVar[tuple[str, ...]] = ("linear", "svc", "mlp")
    #: whether `probe.mdl` applies (MDL codes class labels: not a real-valued score)
    mdl_probe: ClassVar[bool] = True
    #: whether `probe_sweep` applies (a single-label linear probe, whose C and rank it sweeps)
    sweep_probe: ClassVar[bool] = True
    #: BLURB's task category of this type (None: not one of BLURB's) and its official metric,
    #: the defaults of `tasks.<id>.blurb`
    blurb_category: ClassVar[str | None] = None
    blurb_metric: ClassVar[str | None] = None
    #: how a prompting method asks this type (`bioprobe.prompting.schemes`): choice (one answer
    #: among the labels), scale (a score 0-4), per_label (a yes/no question per label) or
    #: mentions (generate each entity type's mentions); None: prompting cannot ask it
    prompt_scheme: ClassVar[str | None] = None
    #: the record's texts a prompt template may hold, as placeholders ({text}, {text_a}, ...)
    prompt_fields: ClassVar[tuple[str, ...]] = ()
    #: the default text of one example up to its answer, and the line before the demonstrations
    prompt_template: ClassVar[str] = ""
    prompt_instruction: ClassVar[str] = ""

    # --- data: reading, labels, subsets ---

    def check_config(self, cfg: Mapping[str, Any], task_id: str) -> None:
        """Type-specific checks of a `tasks.<id>` entry (ConfigError naming the key); most
        types have none."""
        return None

    @abstractmethod
    def config_labels(self, cfg: Mapping[str, Any], key: str) -> list[str]:
        """The config's `labels:` list in the output scheme (its order fixes the class ids)."""

    @abstractmethod
    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        """The label set when the config gives none, from the training records."""

    def label_info(self, cfg: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        """Type-specific entries of `labels.json` besides `task_type`, `labels` and `counts`."""
        return {"label_scheme": None, "entity_types": []}

    @abstractmethod
    def record(
        self,
        row: Mapping[str, Any],
        fields: Mapping[str, str | None],
        fallback_id: str,
        check: LabelCheck,
        cfg: Mapping[str, Any],
        names: Sequence[str] | None,
    ) -> dict:
        """One validated canonical record from a source row (a Hugging Face dataset row, or a
        TSV line as {column: text}); a problem raises `readers.RowProblem`, which the reader
        names by file and line (or dataset and row)."""

    @abstractmethod
    def stratum(self, record: dict) -> tuple[str, ...]:
        """The stratum a training record belongs to, for stratified nested subsets."""

    @abstractmethod
    def texts(self, record: dict) -> list[str]:
        """The text segments of a record (to train a scratch model's tokenizer)."""

    # --- model: head, features, scores ---

    @abstractmethod
    def auto_class(self) -> Any:
        """The transformers Auto class of the head (e.g. AutoModelForTokenClassification)."""

    def head_kwargs(self, labels: Sequence[str]) -> dict[str, Any]:
        """`from_pretrained` arguments of the head: one output per label by default."""
        labels = [str(label) for label in labels]
        if not labels or len(set(labels)) != len(labels):
            from bioprobe.errors import BioprobeError

            raise BioprobeError(f"labels must be non-empty and unique, got {labels}")
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }

    def encode(self, tokenizer: Any, record: Mapping[str, Any], settings: Any) -> Any:
        """One record as the model gets it in every stage (fine-tuning and scoring features, the
        dumps' batches; `settings`: anything with ``max_length``, and ``pair_truncation`` for
        pairs): what ``tokenization.model_inputs`` reads, with its truncation counted, as
        ``truncated_tokens`` (an ``encode_pair`` or ``encode_text`` dict) or
        ``truncated_words`` (a word encoding). Needed by the default `build_features`."""
        raise NotImplementedError(f"task type {self.name!r} has no encode")

    def encode_splits(
        self, tokenizer: Any, splits: Mapping[str, Sequence[dict]], settings: Any
    ) -> dict[str, list]:
        """Every split's records `encode`d, in order (a dump's batches)."""
        return {
            name: [self.encode(tokenizer, r, settings) for r in records]
            for name, records in splits.items()
        }

    def feature_labels(
        self, records: Sequence[dict], encodings: Sequence[Any], labels: Sequence[str]
    ) -> list:
        """Each record's `labels` feature (what the head's loss reads), in order, given its
        encoding: the class id of its `label` by default."""
        label2id = {label: i for i, label in enumerate(labels)}
        return [label2id[r["label"]] for r in records]

    def build_features(
        self, records: Sequence[dict], tokenizer: Any, labels: Sequence[str], training: Any
    ) -> FeatureSet:
        """Model inputs and labels of `records` (truncation counted, never silent): by default
        each record's `encode`d model inputs, its `feature_labels` value and its length."""
        from bioprobe.tokenization import model_inputs
        from bioprobe.training.features import FeatureSet

        encodings = [self.encode(tokenizer, r, training) for r in records]
        values = self.feature_labels(records, encodings, labels)
        out = FeatureSet(features=[])
        for enc, value in zip(encodings, values, strict=True):
            inputs = model_inputs(enc)
            out.features.append({**inputs, "labels": value, "length": len(inputs["input_ids"])})
            cut, words = truncation(enc)
            out.truncated_examples += int(cut)
            out.truncated_words += words
        return out

    def collator(self, tokenizer: Any, pad_to_multiple_of: int | None) -> Any:
        """The batch collator of its features (dynamic padding): one label per example by
        default."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    @abstractmethod
    def compute_metrics(self, labels: Sequence[str]) -> Callable[[Any], dict[str, float]]:
        """`compute_metrics` for the Trainer's model selection (predictions are class ids)."""

    def logits_for_metrics(self, logits: Any, labels: Any) -> Any:
        """What the Trainer keeps of a validation batch's logits for `compute_metrics` (its
        `preprocess_logits_for_metrics`): class ids by default."""
        return head_logits(logits).argmax(dim=-1)

    @abstractmethod
    def batch_predictions(self, logits: Any, labels: Any) -> list:
        """Class ids of one scored batch, per example (a list of ids per example for token
        labels), read from `logits` [B, (T,) C] with the collated `labels`."""

    def single_prediction(self, labels: Sequence[str], predicted: list) -> str | None:
        """The one label a model predicted for every unit of a split (all `O`, all one class),
        None when it predicts several; a model that did not learn the task, worth a warning.
        Predictions that are not class ids (scores, label sets) give None."""
        flat = [p for group in predicted for p in (group if isinstance(group, list) else [group])]
        if not flat or not labels or not all(isinstance(p, int) for p in flat):
            return None
        first = flat[0]
        return str(labels[first]) if all(p == first for p in flat) else None

    def prediction_rows(
        self, labels: Sequence[str], records: Sequence[dict], predicted: list
    ) -> list[dict]:
        """Per example, in order, what its score reads: `id`, `gold` and `predicted` (label
        names, tag lists, label sets or real scores; a run's predictions file holds them).
        One label per example by default."""
        return [
            {"id": r["id"], "gold": r["label"], "predicted": labels[p]}
            for r, p in zip(records, predicted, strict=True)
        ]

    @abstractmethod
    def score_rows(self, labels: Sequence[str], rows: Sequence[dict]) -> dict[str, float]:
        """Downstream scores (the task's metrics) of `prediction_rows`."""

    def score(self, labels: Sequence[str], records: Sequence[dict], predicted: list) -> dict:
        """Downstream scores of a split's predictions (`predicted`: `batch_predictions`'
        values, in the order of `records`)."""
        return self.score_rows(labels, self.prediction_rows(labels, records, predicted))

    @abstractmethod
    def resampling(self, labels: Sequence[str], rows: Sequence[dict]) -> Resampling:
        """`score_rows` as a function of which units of `rows` a bootstrap resample draws
        (`bioprobe.bootstrap`): examples, or the groups the scores treat as one."""

    # --- dumps and probes ---

    @abstractmethod
    def dump(
        self,
        model: Any,
        tokenizer: Any,
        splits: dict[str, list[dict]],
        out: Path,
        settings: DumpSettings,
        is_decoder: bool,
    ) -> tuple[dict[str, tuple[dict, dict]], AttentionSet]:
        """Pool every split's hidden states to probing units into `out`; per split its units
        (labels, ids, ...) and stats, and the attention set (`Stream.attention_set`: each
        example's length and token ids)."""

    def dump_width(self, settings: Any) -> int:
        """Hidden-state vectors a unit's dump rows hold, in multiples of H (all files):
        the disk estimate's (analysis.disk)."""
        return 1

    @abstractmethod
    def features_file(self, split: str, pair_mode: str) -> str:
        """The dump file (`{split}.<kind>.npy`) that probes and CKA read."""

    def probe_data(
        self, features: Any, units: Mapping[str, Any], labels_info: Mapping[str, Any]
    ) -> Any:
        """One split's probing units: `features` [L+1, N, H] (a memmap) with the targets read
        from the dump's `units` (labels as class ids by default)."""
        import numpy as np

        from bioprobe.probing import ProbeData

        names = list(labels_info["labels"])
        index = {name: i for i, name in enumerate(names)}
        return ProbeData(
            features=features,
            labels=np.array([index[label] for label in units["labels"]], dtype=np.int64),
            label_names=names,
            sentence_lengths=units.get("sentence_lengths"),
            word_types=units.get("word_types"),
        )

    def extra_probe_scores(self) -> Callable[[Any, Any], Mapping[str, float]] | None:
        """The type's own metrics of the default classification probes, a function of (gold
        ids, predicted ids) of the scored units, added to every target's rows (with their
        `selectivity_<metric>`); None: none."""
        return None

    def probe(self, fit: Any, score: Any, kind: str, settings: Any, seed: int, threads: int):
        """Rows (layer, probe, target, metric, value) of one probe kind fitted on `fit` and
        scored on `score` (`settings`: `ProbeSettings`); classification probes by default,
        with `extra_probe_scores`."""
        from bioprobe.probing import probe_all_layers

        return probe_all_layers(
            fit,
            score,
            kind=kind,
            hyper=settings.hyper(kind),
            targets=settings.targets,
            label_mode=settings.label_mode,
            seed=seed,
            n_jobs=threads,
            extra_scores=self.extra_probe_scores(),
            control_draws=settings.control_draws,
        )

    def probe_mdl(self, fit: Any, score: Any, settings: Any, seed: int, threads: int):
        """MDL rows (probe `mdl`: online codelengths of `fit`'s labels, `probing.mdl`) with the
        linear probe's settings; class labels of the probing units by default."""
        from bioprobe.probing.mdl import mdl_rows

        return mdl_rows(
            fit,
            score,
            hyper=settings.hyper("linear"),
            targets=settings.targets,
            label_mode=settings.label_mode,
            seed=seed,
            num_threads=threads,
            control_draws=settings.control_draws,
        )

    def probe_sweep(
        self, fit: Any, score: Any, settings: Any, sweep: Any, seed: int, threads: int
    ) -> list[dict]:
        """The linear probe's rows along its complexity (`probing.sweep`; `settings`:
        `ProbeSettings`, `sweep`: `ProbeSweepSettings`): C at full rank, rank at its C."""
        from bioprobe.probing.sweep import sweep_rows

        return sweep_rows(
            fit,
            score,
            Cs=sweep.C,
            ranks=sweep.rank,
            hyper=settings.hyper("linear"),
            label_mode=settings.label_mode,
            seed=seed,
            num_threads=threads,
            extra_scores=self.extra_probe_scores(),
            control_draws=settings.control_draws,
        )


def head_logits(logits: Any) -> Any:
    """The head's logits among what the Trainer hands `logits_for_metrics`: an encoder–decoder's
    output (T5's sequence head) comes as a tuple that also holds the encoder's last states."""
    return logits[0] if isinstance(logits, tuple) else logits


def truncation(encoding: Any) -> tuple[bool, int]:
    """Whether an encoding lost anything to ``max_length``, and how many words: an
    ``encode_pair``/``encode_text`` dict counts sub-tokens (``truncated_tokens``; no words), a
    word encoding whole words (``truncated_words``)."""
    if isinstance(encoding, Mapping):
        return encoding["truncated_tokens"] > 0, 0
    return encoding.truncated_words > 0, encoding.truncated_words
