"""The disk the dumps of a grid will take, estimated at planning from the model configs and the
data, so that a user reads "≈ 410 GB of dumps" before starting rather than after a full disk.

Per variant (one dump directory):

- hidden states: kept layers × units × width × H × bytes, per dumped split, where the units
  are the split's words (token tasks) or examples, capped by ``extract.max_units``; the width
  is the task type's (``TaskType.dump_width``: 1, or 3 for a pair's joint + separate vectors,
  2 for a relation's two entity vectors) and the kept layers ``extract.layers``';
- attention maps: examples × L × heads × T² × bytes, T the mean token count of an example of
  the attention split, estimated from its words (1.4 sub-tokens a word, plus 2 special tokens,
  at most ``max_length``).

What cannot be known without the network (a Hub model whose config is not downloaded yet, a
Hub dataset) is left out and named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioprobe import tasks

#: sub-tokens per whitespace word of biomedical text under a WordPiece/BPE vocabulary (about)
TOKENS_PER_WORD = 1.4
BYTES = {"float16": 2, "float32": 4}


@dataclass(frozen=True)
class SplitSize:
    """A split's examples and whitespace words."""

    examples: int
    words: int


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    heads: int


@dataclass
class DiskEstimate:
    """Bytes of every (task, model)'s dumps, and what could not be counted."""

    hidden: dict[tuple[str, str], int] = field(default_factory=dict)
    attention: dict[tuple[str, str], int] = field(default_factory=dict)
    variants: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.hidden.values()) + sum(self.attention.values())

    def summary(self) -> str:
        """One line for the planning output."""
        if not self.variants:
            return "the dumps of this grid: not estimated (" + "; ".join(self.unknown) + ")"
        per = {k: self.hidden[k] + self.attention[k] for k in self.variants}
        (task, model), largest = max(per.items(), key=lambda kv: kv[1])
        line = (
            f"the dumps of this grid take about {_gb(self.total)} "
            f"(hidden states {_gb(sum(self.hidden.values()))}, attention maps "
            f"{_gb(sum(self.attention.values()))}; {sum(self.variants.values())} variants); "
            f"the largest: {task} x {model}, {_gb(largest)} in "
            f"{self.variants[task, model]} variants. extract.layers, extract.max_units and "
            "keep_dumps: false lower it (README, Disk)"
        )
        if self.unknown:
            line += "; not counted: " + "; ".join(self.unknown)
        return line


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def model_shape(model_config: Mapping[str, Any]) -> ModelShape | None:
    """Layers, width and heads from a config.json dict (the encoder's for an encoder-decoder:
    the stack the analysis reads); None where it does not say."""
    get = model_config.get
    layers = get("num_hidden_layers") or get("num_layers") or get("n_layer")
    hidden = get("hidden_size") or get("d_model") or get("n_embd")
    heads = get("num_attention_heads") or get("num_heads") or get("n_head")
    if not (layers and hidden and heads):
        return None
    return ModelShape(int(layers), int(hidden), int(heads))


def kept_layer_count(layers: int | Iterable[int] | None, n_layers: int) -> int:
    from bioprobe.analysis.extract import kept_layers

    return len(kept_layers(layers if isinstance(layers, int | None) else list(layers), n_layers))


def variant_bytes(
    shape: ModelShape,
    task_type: str,
    splits: Mapping[str, SplitSize],
    extract: Mapping[str, Any],
    *,
    attention_split: str,
    attention_examples: int,
    max_length: int,
) -> tuple[int, int]:
    """(hidden-state bytes, attention-map bytes) of one variant's dump (module doc)."""
    from bioprobe.settings import DumpSettings

    settings = DumpSettings.from_config(
        {k: v for k, v in extract.items() if k in DumpSettings.__dataclass_fields__}
    )
    size = BYTES[settings.dtype]
    kind = tasks.get(task_type)
    width = kind.dump_width(settings) * shape.hidden
    layers = kept_layer_count(settings.layers, shape.layers)
    hidden = 0
    for split in splits.values():
        units = split.words if kind.token_labels else split.examples
        if settings.max_units is not None:
            units = min(units, settings.max_units)
        hidden += layers * units * width * size
    attention = 0
    at = splits.get(attention_split)
    if at and at.examples:
        n = min(attention_examples, at.examples)
        tokens = min(max_length, round(TOKENS_PER_WORD * at.words / at.examples) + 2)
        attention = n * shape.layers * shape.heads * tokens * tokens * size
    return hidden, attention


def count_split(path: Path, data_format: str) -> SplitSize | None:
    """Examples and words of a raw split file (or a prepared ``.jsonl``) without parsing it
    fully; None for what is not a local file (a Hub dataset)."""
    if not path.is_file():
        return None
    examples = words = 0
    if path.suffix == ".jsonl" and data_format == "prepared":
        with path.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                examples += 1
                if "tokens" in record:
                    words += len(record["tokens"])
                else:
                    texts = [v for k, v in record.items() if k.startswith("text")]
                    words += sum(len(str(t).split()) for t in texts)
        return SplitSize(examples, words)
    with path.open(encoding="utf-8", errors="replace") as f:
        if data_format == "bio-tsv":
            in_sentence = False
            for line in f:
                if not line.strip() or line.startswith("-DOCSTART-"):
                    in_sentence = False
                    continue
                words += 1
                if not in_sentence:
                    examples, in_sentence = examples + 1, True
        else:  # one example a line (tsv, pairs-jsonl); a header line counts, which is noise
            for line in f:
                if line.strip():
                    examples += 1
                    words += len(line.split())
    return SplitSize(examples, words)


def task_splits(
    task_cfg: Mapping[str, Any], prepared_dir: Path, names: Iterable[str]
) -> dict[str, SplitSize] | None:
    """The sizes of `names` splits of a task: from its prepared data where the workflow made
    them, else from its raw files; None where neither can be read now."""
    out = {}
    for name in names:
        size = count_split(prepared_dir / f"{name}.jsonl", "prepared")
        if size is None and task_cfg["format"] != "hf":
            size = count_split(
                Path(task_cfg["path"]) / task_cfg["splits"][name], task_cfg["format"]
            )
        if size is None:
            return None
        out[name] = size
    return out


def estimate_grid(
    dump_counts: Mapping[tuple[str, str], int],
    task_sizes: Mapping[str, Mapping[str, SplitSize] | None],
    model_shapes: Mapping[str, ModelShape | None],
    task_types: Mapping[str, str],
    extract: Mapping[str, Any],
    *,
    attention_split: str,
    attention_examples: int,
    max_lengths: Mapping[tuple[str, str], int],
) -> DiskEstimate:
    """The estimate over every (task, model) with `dump_counts` variants."""
    est = DiskEstimate()
    missing_tasks = sorted(t for t, s in task_sizes.items() if s is None)
    missing_models = sorted(m for m, s in model_shapes.items() if s is None)
    if missing_tasks:
        est.unknown.append(f"tasks {', '.join(missing_tasks)} (data not readable yet)")
    if missing_models:
        est.unknown.append(f"models {', '.join(missing_models)} (config not downloaded yet)")
    for (task, model), count in sorted(dump_counts.items()):
        sizes, shape = task_sizes.get(task), model_shapes.get(model)
        if sizes is None or shape is None:
            continue
        hidden, attention = variant_bytes(
            shape,
            task_types[task],
            sizes,
            extract,
            attention_split=attention_split,
            attention_examples=attention_examples,
            max_length=max_lengths[task, model],
        )
        est.hidden[task, model] = hidden * count
        est.attention[task, model] = attention * count
        est.variants[task, model] = count
    return est


def dumped_splits(config: Mapping[str, Any]) -> list[str]:
    """The splits every dump holds (the `extract` rule's: probes, attention and CKA)."""
    probe = config["probe"]
    names = {probe["fit_split"], probe["score_split"], config["attention"]["split"]}
    return sorted(names | {config["cka"]["split"]})


def estimate_config(
    config: Mapping[str, Any],
    dump_counts: Mapping[tuple[str, str], int],
    model_shapes: Mapping[str, ModelShape | None],
    task_dir: str,
) -> DiskEstimate:
    """The estimate of a validated config's grid; `task_dir` is the prepared data's path
    template (``{task}``), read where the workflow made them."""
    from bioprobe.config import training_config

    names = dumped_splits(config)
    task_sizes = {
        t: task_splits(cfg, Path(task_dir.format(task=t)), names)
        for t, cfg in config["tasks"].items()
    }
    return estimate_grid(
        dump_counts,
        task_sizes,
        model_shapes,
        {t: cfg["type"] for t, cfg in config["tasks"].items()},
        config["extract"],
        attention_split=config["attention"]["split"],
        attention_examples=config["attention"]["max_examples"],
        max_lengths={(t, m): training_config(config, t, m)["max_length"] for t, m in dump_counts},
    )
