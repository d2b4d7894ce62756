"""Typed settings: the validated config slices a job receives, as frozen dataclasses.

A job turns its `params:` slice into one of these once, where it starts (`from_config`), and
the library reads attributes, never dict keys. The schema (schemas/config.schema.yaml) owns
the defaults and the validation; these classes own the names and types. A key the class does
not know is an error, so schema and class cannot drift apart silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="Settings")


class Settings:
    """Shared constructors of the settings dataclasses."""

    @classmethod
    def from_config(cls: type[T], values: Mapping[str, Any], key: str = "") -> T:
        """The settings of a validated config slice; a key unknown to the class is an error.
        A dashed config key (`bilstm-crf`) is the field with underscores."""
        fields = {field_name(k): _frozen(v) for k, v in values.items()}
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(fields) - names)
        if unknown:
            where = f" in {key}" if key else ""
            raise ValueError(f"{cls.__name__}: unknown setting {unknown[0]!r}{where}")
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        """A plain, key-sorted dict (for JSON records and fingerprints)."""
        return {k: _plain(v) for k, v in sorted(dataclasses.asdict(self).items())}  # type: ignore[call-overload]

    def __getitem__(self, name: str) -> Any:
        """Read-only mapping-style access (`settings["batch_size"]`) for records and notebooks;
        the library reads attributes."""
        if name not in {f.name for f in dataclasses.fields(self)}:  # type: ignore[arg-type]
            raise KeyError(name)
        return getattr(self, name)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def field_name(config_key: str) -> str:
    """The dataclass field of a config key: config keys may hold dashes, fields cannot."""
    return config_key.replace("-", "_")


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """`training:` (merged with the task's and the model's overrides; the method's learning
    rate applied where it sets one)."""

    epochs: float = 3
    learning_rate: float = 2e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation: int = 1
    warmup_ratio: float = 0.1
    lr_scheduler: str = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    max_length: int = 128
    pair_truncation: str = "longest_first"
    group_by_length: bool = True
    select_best: bool = True
    save_steps: int | None = None
    precision: str = "auto"
    logging_steps: int = 10
    gradient_checkpointing: bool = False
    report_to: str = "none"  # none | tensorboard | wandb
    # one fine-tuning job on several processes (bioprobe.training.distributed): batch_size is
    # the batch over all of them
    processes: int = 1
    strategy: str = "ddp"  # ddp | fsdp
    optim: str = "adamw"  # adamw | adamw_8bit | paged_adamw_8bit

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.gradient_accumulation


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """`probe:`: which probes, on which labels and splits, with which hyper-parameters."""

    kinds: tuple[str, ...] = ("linear",)
    label_mode: str = "type"
    pair_mode: str = "separate"
    fit_split: str = "validation"
    score_split: str = "test"
    control: bool = True
    control_draws: int = 3  # control tasks drawn per run; the control's score is their mean
    mdl: bool = True  # MDL online codelengths (probing.mdl), on the fit split
    linear: Mapping[str, Any] = field(default_factory=lambda: {"C": 0.01})  # the schema's C
    svc: Mapping[str, Any] = field(default_factory=dict)
    mlp: Mapping[str, Any] = field(default_factory=dict)
    bilstm_crf: Mapping[str, Any] = field(default_factory=dict)
    ridge: Mapping[str, Any] = field(default_factory=dict)  # similarity tasks' linear probe

    def hyper(self, kind: str) -> dict[str, Any]:
        """The hyper-parameters of probe `kind` (`{}`: its defaults)."""
        return dict(getattr(self, field_name(kind), None) or {})

    @property
    def targets(self) -> tuple[str, ...]:
        return ("task", "control") if self.control else ("task",)


@dataclass(frozen=True)
class CkaSettings(Settings):
    """`cka:` (representation similarity) plus the pair mode the probes read (the measures
    compare the same units)."""

    split: str = "test"
    metrics: tuple[str, ...] = ("cka", "procrustes", "svcca")  # analysis.repsim.METRICS
    pair_mode: str = "separate"


@dataclass(frozen=True)
class BootstrapSettings(Settings):
    """`statistics.bootstrap`: percentile bootstrap CIs of the test scores."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class PermutationSettings(Settings):
    """`statistics.permutation`: Spearman permutation p-values (exact while n! <= resamples;
    the default 8! is exact up to 8 points)."""

    resamples: int = 40320
    seed: int = 0


@dataclass(frozen=True)
class DumpSettings(Settings):
    """What a dump depends on: `extract:` plus the training encoding and the analysis splits
    (the `extract` rule's slice), and the variant's leading virtual tokens."""

    word_pooling: str = "mean"  # first | mean | last sub-token of each word
    joint_pooling: str = "auto"  # cls (encoders) / last non-pad (decoders) | cls | last | mean
    relation_pooling: str = "entity"  # entity (2 entity starts) | cls (the head's token) | mean
    pair_modes: tuple[str, ...] = ("separate", "joint")
    dtype: str = "float16"
    batch_size: int = 32
    max_length: int = 128
    pair_truncation: str = "longest_first"
    splits: tuple[str, ...] = ("validation", "test")
    attention_split: str = "test"
    attention_max_examples: int = 64
    virtual_tokens: int = 0  # prompt methods: leading positions that are not real tokens
    layers: int | tuple[int, ...] | None = None  # hidden layers kept: all, every k-th, listed
    max_units: int | None = None  # a seeded cap on each split's analysed units (None: all)


@dataclass(frozen=True)
class ErasureSettings(Settings):
    """`erasure:`: causal erasure of each layer's probed property (LEACE) in fine-tuned runs."""

    enabled: bool = True
    sizes: tuple[int, ...] | None = None  # the erased runs' sizes (the rule's); None: all
    seeds: tuple[int, ...] | None = None  # the erased runs' seeds; None: all
    fit_split: str = "validation"  # the erasers are fitted here (the probes' fit split)
    split: str = "test"  # the erased model is scored here


@dataclass(frozen=True)
class ProbeSweepSettings(Settings):
    """`probe_sweep:`: the linear probe's task and control scores along its complexity
    (`probing.sweep`): C at full rank, the weight matrix's rank at `probe.linear.C`."""

    enabled: bool = False  # each variant costs ~16 linear probes: off in the demo's time budget
    C: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    rank: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    sizes: tuple[int, ...] | None = (0,)  # the swept variants' sizes (0: size-0 ones); None: all


@dataclass(frozen=True)
class PromptingSettings(Settings):
    """A `methods.<id>` entry of kind prompting (`bioprobe.prompting`)."""

    kind: str = "prompting"
    shots: int = 0  # demonstrations per prompt, drawn from the training split with the seed
    templates: Mapping[str, str] = field(default_factory=dict)  # task type -> its template
    instruction: str | None = None  # None: the task's prompt.instruction, else its type's
    chat_template: str = "auto"  # auto | always | never
    length_normalise: bool = False  # rank answers by mean, not summed, token log-likelihood
    max_new_tokens: int = 48  # generated tokens per NER/PICO answer
    batch_size: int = 8


@dataclass(frozen=True)
class TaskPromptSettings(Settings):
    """`tasks.<id>.prompt`: how prompting methods ask this task."""

    instruction: str | None = None  # None: the task type's default
    verbalizer: Mapping[str, str] = field(default_factory=dict)  # label -> its words


@dataclass(frozen=True)
class InstructionSetSettings(Settings):
    """`instructions:`, the instruction set of the instruction methods (bioprobe.instructions)."""

    source: str = "demo"  # demo | a file or directory | a Hub dataset id
    format: str = "json"  # json | jsonl | hf
    fields: Mapping[str, str] = field(default_factory=dict)  # record field -> the source's key
    split: str = "train"  # an hf source's split
    revision: str | None = None  # a Hub source's commit or branch
