"""Model sources and loading: Hub ids, local directories, Python packages, scratch models.

A config entry (``models.<id>``) becomes a :class:`ModelSpec` through :func:`resolve_model`.
Loading for a task goes through :func:`load_model_for_task` (pretrained or fine-tuned weights,
a fresh classification head where the sizes differ) or :func:`random_init_like` (same
architecture, random weights: the probing literature's control).

Safety: weights load from safetensors only unless the entry sets ``allow_pickle: true``, and
a repository's own Python code runs only with ``trust_remote_code: true``. This module never
sets ``HF_HUB_OFFLINE``: whether the Hub may be reached is the caller's (the workflow's) choice.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.hub import is_hub_id
from bioprobe.scratch import build_scratch, validate_scratch
from bioprobe.seeding import derive_seed
from bioprobe.tokenization import load_tokenizer

__all__ = [
    "ModelSpec",
    "build_scratch",
    "check_weights",
    "is_decoder_config",
    "load_model_for_task",
    "load_tokenizer_for",
    "random_init_like",
    "resolve_model",
]

Kind = Literal["scratch", "package", "local", "hub"]

#: model types whose models read left to right (sequence head pools the last non-pad token)
DECODER_MODEL_TYPES = frozenset(
    {
        "biogpt",
        "bloom",
        "ctrl",
        "falcon",
        "gemma",
        "gemma2",
        "gpt2",
        "gpt_bigcode",
        "gpt_neo",
        "gpt_neox",
        "gptj",
        "llama",
        "mistral",
        "mixtral",
        "openai-gpt",
        "opt",
        "phi",
        "phi3",
        "qwen2",
        "qwen3",
    }
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved ``models.<id>`` entry."""

    model_id: str
    #: "scratch" | "package" | "local" | "hub"
    kind: Kind
    #: the config's ``source`` as written
    source: str
    #: what ``from_pretrained`` loads: a directory or a Hub id; for scratch the built directory
    #: (None until given, see :func:`resolve_model`'s ``scratch_dir``)
    location: str | None
    revision: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    scratch: dict[str, Any] | None = None
    #: "bert", "gpt2", "biogpt" or another ``config.model_type``; None if not readable offline
    family: str | None = None
    is_decoder: bool | None = None

    @property
    def key(self) -> str:
        return f"models.{self.model_id}"


def is_decoder_config(config: Any) -> bool:
    """Whether a model config (object or dict) describes a left-to-right decoder."""
    get = config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)
    if get("model_type") in DECODER_MODEL_TYPES:
        return True
    archs = get("architectures") or []
    return bool(archs) and all(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


def _read_config(location: str, kind: Kind, revision: str | None) -> dict[str, Any] | None:
    """config.json of a local directory, or of a Hub model already in the local cache."""
    path: str | None = None
    if kind in ("local", "package"):
        candidate = Path(location) / "config.json"
        path = str(candidate) if candidate.is_file() else None
    elif kind == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(location, "config.json", revision=revision)
            path = found if isinstance(found, str) else None
        except Exception:  # the cache is an optimisation: never fail resolution on it
            path = None
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def resolve_model(
    model_id: str, model_cfg: Mapping[str, Any], *, scratch_dir: str | os.PathLike | None = None
) -> ModelSpec:
    """Turn a ``models.<id>`` config entry into a :class:`ModelSpec`; config errors name the key.

    ``source``: ``scratch`` (needs ``scratch:``; its location is `scratch_dir`, where the
    workflow builds it), ``package:<module>`` (a package whose ``get_model_path()`` returns a
    model directory), a local path (starting with ``/``, ``./``, ``../``, ``~``, or an
    existing directory), otherwise a Hub id. Never touches the network: family and
    ``is_decoder`` come from the scratch entry or a config.json found locally (for Hub ids,
    in the Hub cache), else stay None.
    """
    key = f"models.{model_id}"
    source = model_cfg.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError("must be a non-empty string", f"{key}.source")
    source = source.strip()
    common = {
        "model_id": model_id,
        "source": source,
        "revision": model_cfg.get("revision"),
        "trust_remote_code": bool(model_cfg.get("trust_remote_code", False)),
        "allow_pickle": bool(model_cfg.get("allow_pickle", False)),
    }
    scratch = model_cfg.get("scratch")
    if source == "scratch":
        return _resolve_scratch(scratch, key, scratch_dir, common)
    if scratch is not None:
        raise ConfigError("only allowed with source: scratch", f"{key}.scratch")
    kind, location = _locate(source, key)
    config = _read_config(location, kind, common["revision"])
    return ModelSpec(
        kind=kind,
        location=location,
        family=config.get("model_type") if config else None,
        is_decoder=is_decoder_config(config) if config else None,
        **common,
    )


def _resolve_scratch(
    scratch: Any, key: str, scratch_dir: str | os.PathLike | None, common: Mapping[str, Any]
) -> ModelSpec:
    """A scratch entry: family and decoder-ness come from the entry, nothing is read from disk."""
    if scratch is None:
        raise ConfigError("source: scratch needs a scratch: entry", f"{key}.scratch")
    scratch = validate_scratch(scratch, f"{key}.scratch")
    return ModelSpec(
        kind="scratch",
        location=str(scratch_dir) if scratch_dir is not None else None,
        scratch=scratch,
        family=scratch["family"],
        is_decoder=scratch["family"] in DECODER_MODEL_TYPES,
        **common,
    )


def _locate(source: str, key: str) -> tuple[Kind, str]:
    """The kind of a non-scratch `source` and what ``from_pretrained`` loads for it."""
    if source.startswith("package:"):
        return "package", _package_location(source.removeprefix("package:").strip(), key)
    # before the Hub check: an existing directory wins over a Hub id spelt the same
    if source.startswith(("/", "./", "../", "~")) or Path(source).is_dir():
        return "local", _local_location(source, key)
    if is_hub_id(source):
        return "hub", source
    raise ConfigError(
        f"{source!r} is neither scratch, package:<module>, a directory nor a Hub id",
        f"{key}.source",
    )


def _package_location(module_name: str, key: str) -> str:
    """The model directory a package's ``get_model_path()`` returns."""
    try:
        module = importlib.import_module(module_name)
        location = str(module.get_model_path())
    except ImportError as exc:
        raise ConfigError(
            f"package {module_name!r} is not installed ({exc})", f"{key}.source"
        ) from exc
    except AttributeError as exc:
        raise ConfigError(
            f"package {module_name!r} has no get_model_path()", f"{key}.source"
        ) from exc
    if not Path(location).is_dir():
        raise ConfigError(
            f"{module_name}.get_model_path() gave {location}, not a directory", f"{key}.source"
        )
    return location


def _local_location(source: str, key: str) -> str:
    location = str(Path(source).expanduser())
    if not Path(location).is_dir():
        raise ConfigError(f"directory {location} does not exist", f"{key}.source")
    return location


# --------------------------------------------------------------------------------------------
# loading


def _location(spec: ModelSpec, location: str | os.PathLike | None = None) -> str:
    where = location if location is not None else spec.location
    if where is None:
        raise BioprobeError(f"{spec.key}: the scratch model has not been built (no location)")
    return str(where)


def _hub_kwargs(spec: ModelSpec, location: str) -> dict[str, Any]:
    """revision only where `location` is the spec's own Hub id."""
    if spec.kind == "hub" and location == spec.location and spec.revision is not None:
        return {"revision": spec.revision}
    return {}


def load_tokenizer_for(spec: ModelSpec, location: str | os.PathLike | None = None) -> Any:
    """The tokenizer of a model (`location` defaults to the spec's own), via load_tokenizer."""
    where = _location(spec, location)
    return load_tokenizer(
        where,
        revision=_hub_kwargs(spec, where).get("revision"),
        trust_remote_code=spec.trust_remote_code,
    )


def check_weights(location: str | os.PathLike, spec: ModelSpec) -> None:
    """Refuse a local directory whose only weights are pickles, unless the spec allows pickle."""
    path = Path(location)
    if spec.allow_pickle or not path.is_dir():
        return
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    if any(n.endswith((".safetensors", ".safetensors.index.json")) for n in names):
        return
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES) or n.endswith(".bin.index.json")]
    if pickles:
        raise ConfigError(
            f"{path / pickles[0]} is a pickle (loading it can run arbitrary code) and {path} "
            "has no safetensors weights; convert it to safetensors, or set "
            f"'{spec.key}.allow_pickle: true' if you trust it",
            f"{spec.key}.allow_pickle",
        )


@contextlib.contextmanager
def _refuse_remote_code(spec: ModelSpec) -> Iterator[None]:
    """transformers refuses a repository's own code without trust_remote_code (nothing runs);
    say which config key opts in."""
    try:
        yield
    except ValueError as exc:
        if spec.trust_remote_code or "trust_remote_code" not in str(exc):
            raise
        raise ConfigError(
            f"{spec.location} needs its own Python code to load; it was not run. Set "
            f"'{spec.key}.trust_remote_code: true' only if you trust that code",
            f"{spec.key}.trust_remote_code",
        ) from exc


def _auto_class(task_type: str) -> Any:
    from bioprobe import tasks

    return tasks.get(task_type).auto_class()


def _label_kwargs(labels: Sequence[str]) -> dict[str, Any]:
    labels = [str(label) for label in labels]
    if not labels or len(set(labels)) != len(labels):
        raise BioprobeError(f"labels must be non-empty and unique, got {labels}")
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def _set_pad(model: Any, tokenizer: Any) -> None:
    """The sequence head of a decoder pools the last token whose id is not config.pad_token_id."""
    if tokenizer.pad_token_id is not None and model.config.pad_token_id != tokenizer.pad_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id


def load_model_for_task(
    location: str | os.PathLike | None,
    task_type: str,
    labels: Sequence[str],
    *,
    spec: ModelSpec,
    attn_implementation: str | None = None,
    dtype: Any = None,
    tokenizer: Any = None,
    seed: int | None = None,
    quantization_config: Any = None,
) -> Any:
    """A token- (``ner``) or sequence- (``pair``) classification model with ``labels``.

    `location` (default: the spec's) is a pretrained model (it gets a fresh head) or a
    fine-tuned one (its head is kept when the label count matches; ``ignore_mismatched_sizes``
    re-initialises a head of another size). The fresh head is drawn from a generator seeded
    with `seed` when given (the global RNG is left as it was). Safetensors only unless
    ``spec.allow_pickle``; remote code only if ``spec.trust_remote_code``. The model's
    ``config.pad_token_id`` is set from the tokenizer (loaded from `location` if not passed):
    without it a GPT-2 sequence head cannot pool a padded batch.
    """
    import torch

    where = _location(spec, location)
    check_weights(where, spec)
    kwargs: dict[str, Any] = {
        **_label_kwargs(labels),
        **_hub_kwargs(spec, where),
        "ignore_mismatched_sizes": True,
        "trust_remote_code": spec.trust_remote_code,
        "use_safetensors": None if spec.allow_pickle else True,
    }
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if dtype is not None:
        kwargs["dtype"] = dtype
    if quantization_config is not None:  # qlora's 4-bit base (bioprobe.methods)
        kwargs["quantization_config"] = quantization_config
    if tokenizer is None:
        tokenizer = load_tokenizer_for(spec, where)
    auto = _auto_class(task_type)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(derive_seed("head", seed))
        try:
            with _refuse_remote_code(spec):
                model = auto.from_pretrained(where, **kwargs)
        except OSError as exc:
            if not spec.allow_pickle and "safetensors" in str(exc):
                raise ConfigError(
                    f"{where} has no safetensors weights ({exc}); set "
                    f"'{spec.key}.allow_pickle: true' to accept pickle weights if you trust them",
                    f"{spec.key}.allow_pickle",
                ) from exc
            raise
    _set_pad(model, tokenizer)
    return model


def random_init_like(
    location: str | os.PathLike | None,
    task_type: str,
    labels: Sequence[str],
    *,
    spec: ModelSpec,
    seed: int,
    attn_implementation: str | None = None,
    dtype: Any = None,
    tokenizer: Any = None,
) -> Any:
    """The architecture and config of `location` with random weights drawn with `seed`.

    The probing literature's control: no weight file is read. The draw differs from a scratch
    build and a fresh head with the same `seed` (see ``derive_seed``). Returned in eval mode, like
    ``from_pretrained``; ``config.pad_token_id`` is set as in :func:`load_model_for_task`.
    """
    import torch
    from transformers import AutoConfig

    where = _location(spec, location)
    with _refuse_remote_code(spec):
        config = AutoConfig.from_pretrained(
            where,
            trust_remote_code=spec.trust_remote_code,
            **_hub_kwargs(spec, where),
            **_label_kwargs(labels),
        )
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if dtype is not None:
        kwargs["dtype"] = dtype
    if tokenizer is None:
        tokenizer = load_tokenizer_for(spec, where)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("random-init", seed))
        model = _auto_class(task_type).from_config(config, **kwargs)
    _set_pad(model, tokenizer)
    return model.eval()
