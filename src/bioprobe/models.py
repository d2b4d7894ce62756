"""Model sources and loading: Hub ids, local directories, Python packages, scratch models.

A config entry (``models.<id>``) becomes a :class:`ModelSpec` through :func:`resolve_model`.
Loading for a task goes through :func:`load_model_for_task` (pretrained or fine-tuned weights,
a fresh classification head where the sizes differ) or :func:`random_init_like` (same
architecture, random weights: the probing literature's control).

Safety: weights load from safetensors only unless the entry sets ``allow_pickle: true``, and
a repository's own Python code runs only with ``trust_remote_code: true``. This module never
sets ``HF_HUB_OFFLINE``: whether the Hub may be reached is the caller's (the workflow's) choice.

What a model directory must hold is checked where it is resolved and again where it is loaded,
each problem one error naming the file and ``models.<id>.source``: a tokenizer vocabulary
(without one transformers builds a tokenizer of special tokens only, and every word becomes
``[UNK]``), and safetensors files whose header and size agree (a truncated copy). The
``max_length`` of a task and model must fit the model's position embeddings
(:func:`check_max_length`). :func:`model_digest` is the identity of a local model's files, part
of its jobs' ``params`` so that replacing a file re-runs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bioprobe import tasks
from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.hub import is_hub_id
from bioprobe.scratch import build_scratch, validate_scratch
from bioprobe.seeding import derive_seed
from bioprobe.tokenization import load_tokenizer

__all__ = [
    "ModelSpec",
    "build_scratch",
    "check_max_length",
    "check_model_files",
    "check_weights",
    "inference_half",
    "is_decoder_config",
    "load_model_for_task",
    "load_tokenizer_for",
    "model_digest",
    "position_limit",
    "random_init_like",
    "read_model_config",
    "resolve_model",
    "safetensors_problem",
    "weights_dtype",
]

Kind = Literal["scratch", "package", "local", "hub"]

#: model types of encoder-decoders (where a config dict does not say is_encoder_decoder)
ENCODER_DECODER_TYPES = frozenset({"t5", "mt5", "umt5", "bart", "mbart", "pegasus"})
#: ``models.<id>.dtype`` values (:func:`weights_dtype`)
WEIGHT_DTYPES = ("auto", "float32", "bfloat16", "float16")
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
#: files a tokenizer's vocabulary is read from (the names in transformers' VOCAB_FILES_NAMES);
#: so is any file whose name contains "vocab" or ends in TOKENIZER_SUFFIXES (sentencepiece,
#: tiktoken). tokenizer_config.json and special_tokens_map.json alone hold no vocabulary.
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "tokenizer.model",
        "spiece.model",
        "spm.model",
        "sentencepiece.bpe.model",
        "sentencepiece.model",
        "bpe.codes",
        "dict.txt",
        "prophetnet.tokenizer",
    }
)
TOKENIZER_SUFFIXES = (".model", ".spm", ".tiktoken")
#: safetensors refuses a header larger than this
SAFETENSORS_MAX_HEADER = 100_000_000
#: model types whose position ids start after the padding index (RoBERTa's convention: token i
#: sits at position pad_token_id + 1 + i), so pad_token_id + 1 positions are never a token's
PADDING_OFFSET_MODEL_TYPES = frozenset(
    {
        "camembert",
        "data2vec-text",
        "esm",
        "ibert",
        "layoutlmv3",
        "lilt",
        "longformer",
        "luke",
        "markuplm",
        "mpnet",
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xmod",
    }
)
#: model types with relative position buckets and no position table (T5, FLAN-T5, UL2), though
#: their configs may carry ``n_positions`` (512, the pretraining length)
RELATIVE_POSITION_MODEL_TYPES = frozenset({"t5", "mt5", "umt5", "longt5"})
#: config keys of rotary position embeddings: no table to run out of, no hard length limit
ROTARY_KEYS = (
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "rotary_dim",
    "rotary_pct",
    "rotary_emb_base",
)


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
    #: ``models.<id>.dtype``: auto, float32, bfloat16 or float16 (:func:`weights_dtype`)
    dtype: str = "auto"

    @property
    def key(self) -> str:
        return f"models.{self.model_id}"


def _getter(config: Any) -> Any:
    """`get(key, default)` on a config object or a config.json dict alike."""
    return config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)


def is_encoder_decoder_config(config: Any) -> bool:
    """Whether a model config (object or dict) describes an encoder-decoder (T5, BART)."""
    get = _getter(config)
    return bool(get("is_encoder_decoder", False)) or get("model_type") in ENCODER_DECODER_TYPES


def is_generative_config(config: Any) -> bool:
    """Whether a model config (object or dict) describes a model that generates text: a
    decoder or an encoder-decoder (what prompting and instruction tuning need), not an
    encoder."""
    return is_decoder_config(config) or is_encoder_decoder_config(config)


def model_type_of(config: Any) -> Any:
    """``model_type`` of a config object or a config.json dict (None where it names none)."""
    return _getter(config)("model_type")


def is_decoder_config(config: Any) -> bool:
    """Whether a model config (object or dict) describes a left-to-right decoder."""
    get = _getter(config)
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
    in the Hub cache), else stay None. A local or package directory must hold a tokenizer
    and complete safetensors files (:func:`check_model_files`).
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
        "dtype": _model_dtype(model_cfg.get("dtype", "auto"), key),
    }
    scratch = model_cfg.get("scratch")
    if source == "scratch":
        return _resolve_scratch(scratch, key, scratch_dir, common)
    if scratch is not None:
        raise ConfigError("only allowed with source: scratch", f"{key}.scratch")
    kind, location = _locate(source, key)
    config = _read_config(location, kind, common["revision"])
    spec = ModelSpec(
        kind=kind,
        location=location,
        family=config.get("model_type") if config else None,
        is_decoder=is_decoder_config(config) if config else None,
        **common,
    )
    if kind in ("local", "package"):
        check_model_files(spec)
    return spec


def _model_dtype(value: Any, key: str) -> str:
    if value not in WEIGHT_DTYPES:
        raise ConfigError(f"must be one of {', '.join(WEIGHT_DTYPES)}", f"{key}.dtype")
    return value


def weights_dtype(spec: ModelSpec, half: str | None = None) -> Any:
    """The torch dtype a job loads `spec`'s weights in: ``models.<id>.dtype`` where set, else
    `half` (``bfloat16``/``float16``: the half type the job computes in) or float32.

    The weights are read in this dtype straight from the checkpoint (transformers builds the
    model on the meta device), so an 8B model in bf16 is never materialised in float32 first.
    Callers pass `half` only for weights no optimiser updates (an adapter's frozen base,
    evaluation, dumps, erasure; :func:`inference_half`): full fine-tuning keeps float32 master
    weights, because AdamW's small updates vanish in bf16's 8-bit mantissa; set
    ``dtype: bfloat16`` to train pure bf16 anyway (with an 8-bit optimiser, say).
    """
    import torch

    return getattr(torch, half or "float32") if spec.dtype == "auto" else getattr(torch, spec.dtype)


def inference_half() -> str | None:
    """The half type inference runs in: bf16 on a CUDA GPU that computes it, else None
    (float32: on the CPU, and fp16 overflows the activations of some large models)."""
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else None


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
# what a model directory holds: a tokenizer, complete weights


def _is_tokenizer_file(name: str) -> bool:
    lower = name.lower()
    return lower in TOKENIZER_FILES or lower.endswith(TOKENIZER_SUFFIXES) or "vocab" in lower


def tokenizer_files(location: str | os.PathLike) -> list[str]:
    """The files of directory `location` that a tokenizer's vocabulary can be read from."""
    return sorted(
        p.name for p in Path(location).iterdir() if p.is_file() and _is_tokenizer_file(p.name)
    )


def check_tokenizer_files(location: str | os.PathLike, spec: ModelSpec) -> None:
    """Refuse a model directory without a tokenizer vocabulary.

    From config.json alone transformers builds a tokenizer of the family's special tokens and
    nothing else: every word becomes the unknown token, and a run goes to the end with scores
    of 0. A model with its own code (``trust_remote_code``) may keep its vocabulary in files of
    other names: only the loaded tokenizer is checked then (:func:`load_tokenizer_for`).
    """
    path = Path(location)
    if spec.trust_remote_code or not path.is_dir() or tokenizer_files(path):
        return
    raise ConfigError(
        f"{path} has no tokenizer files (no tokenizer.json, vocab.txt, vocab.json or "
        "sentencepiece *.model): every word would become an unknown token. Save the tokenizer "
        "the model was trained with into that directory (tokenizer.save_pretrained)",
        f"{spec.key}.source",
    )


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why `path` is not a complete safetensors file, or None: its header is read (not the
    tensors) and the bytes it describes must be the bytes the file holds, as safetensors
    requires. Catches truncated and mangled copies; changed tensor values load as they are."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return f"{size} bytes, too short for a safetensors header"
            length = int.from_bytes(prefix, "little")
            if length > SAFETENSORS_MAX_HEADER:
                return f"its first bytes give a header of {length} bytes: not safetensors"
            if length > size - 8:
                return f"its header would be {length} bytes long, the file has {size}: truncated"
            raw = fh.read(length)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    try:
        header = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)
        ):
            return f"its header has no valid data_offsets for tensor {name!r}"
        end = max(end, offsets[1])
    held = size - 8 - length
    if end > held:
        return f"its header describes {end} bytes of tensors but the file holds {held}: truncated"
    if end < held:
        return f"its header describes {end} bytes of tensors but the file holds {held}"
    return None


def _index_problem(index: Path) -> str | None:
    """Why a sharded checkpoint's index does not match its directory, or None."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
    except (OSError, ValueError, AttributeError):
        return "it is not a readable JSON index"
    if not isinstance(weight_map, dict):
        return "it has no weight_map"
    missing = sorted(set(map(str, weight_map.values())) - {p.name for p in index.parent.iterdir()})
    if missing:
        return f"it names {missing[0]}, which is missing" + (
            f" (and {len(missing) - 1} more shards)" if len(missing) > 1 else ""
        )
    return None


def _source_dir(spec: ModelSpec) -> Path | None:
    """The directory that ``models.<id>.source`` names (local and package models)."""
    key = spec.key
    try:
        if spec.kind == "local":
            return Path(_local_location(spec.source, key))
        if spec.kind == "package":
            return Path(_package_location(spec.source.removeprefix("package:").strip(), key))
    except ConfigError:
        return None
    return None


def _weights_error(spec: ModelSpec, path: Path, problem: str) -> BioprobeError:
    """One line naming the broken file and the model entry, with what to do about it: fix the
    source (a local or package model), or delete what the workflow wrote so it writes it again
    (a scratch build, a Hub download, a fine-tuned run)."""
    source = _source_dir(spec)
    if source is not None and path.resolve().is_relative_to(source.resolve()):
        return ConfigError(
            f"{path}: {problem}; the file is damaged (a copy or download cut short?): "
            "copy or download the model again",
            f"{spec.key}.source",
        )
    return BioprobeError(
        f"{path}: {problem}; the file is damaged (a copy or download cut short?). It belongs "
        f"to {spec.key} (source: {spec.source}) and was written by the workflow: delete "
        f"{path.parent} and run the workflow again to write it anew"
    )


def check_safetensors(location: str | os.PathLike, spec: ModelSpec) -> None:
    """Every safetensors file of directory `location` complete, every shard its index names
    there; else one error naming the file (see :func:`safetensors_problem`)."""
    path = Path(location)
    if not path.is_dir():
        return
    for file in sorted(path.iterdir()):
        if not file.is_file():
            continue
        if file.name.endswith(".safetensors"):
            problem = safetensors_problem(file)
        elif file.name.endswith(".safetensors.index.json"):
            problem = _index_problem(file)
        else:
            continue
        if problem is not None:
            raise _weights_error(spec, file, problem)


def check_model_files(spec: ModelSpec, location: str | os.PathLike | None = None) -> None:
    """What a model directory (`location`, default the spec's) must hold to load right: a
    tokenizer vocabulary and complete safetensors files. Reads file names and safetensors
    headers only: cheap enough for every resolution."""
    where = location if location is not None else spec.location
    if where is None or not Path(where).is_dir():
        return
    check_tokenizer_files(where, spec)
    check_safetensors(where, spec)


# --------------------------------------------------------------------------------------------
# positions: training.max_length against the model's position embeddings


def position_limit(config: Any) -> tuple[int, str] | None:
    """How many tokens, special tokens included, a model's position embeddings cover, and the
    config attribute that says so; None where nothing limits the length (rotary or purely
    relative positions, or a config that names no limit).

    ``max_position_embeddings`` (``n_positions`` for GPT-2) as it is, except for RoBERTa's
    family, whose positions start after the padding index (514 - (1 + 1) = 512 tokens).
    BioGPT, OPT and BART store their offset of 2 on top of ``max_position_embeddings``.
    """
    get = _getter(config)
    if get("position_embedding_type") == "rotary" or any(get(k) for k in ROTARY_KEYS):
        return None
    model_type = get("model_type")
    if model_type in ("deberta", "deberta-v2") and not get("position_biased_input", True):
        return None  # relative attention only
    if model_type in RELATIVE_POSITION_MODEL_TYPES:
        return None  # relative position buckets; T5's n_positions only notes its pretraining
    for name in ("n_positions", "max_position_embeddings"):
        value = get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            break
    else:
        return None
    if model_type in PADDING_OFFSET_MODEL_TYPES:
        pad = get("pad_token_id")
        offset = (pad if isinstance(pad, int) else 1) + 1
        return value - offset, f"{name} {value} less the padding offset {offset}"
    return value, f"{name} {value}"


def read_model_config(
    spec: ModelSpec, location: str | os.PathLike | None = None
) -> dict[str, Any] | None:
    """The model's config as a dict where it can be read without the network: config.json in
    `location` (default the spec's), a scratch entry's family and positions, a Hub model's
    config.json in the local Hub cache; else None."""
    where = location if location is not None else spec.location
    if where is not None:
        path = Path(where) / "config.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    if spec.kind == "scratch" and spec.scratch:
        return {
            "model_type": spec.scratch["family"],
            "max_position_embeddings": spec.scratch["max_position"],
        }
    if spec.kind == "hub":
        return _read_config(spec.source, "hub", spec.revision)
    return None


def check_max_length(
    spec: ModelSpec,
    max_length: int,
    *,
    key: str | None = None,
    task: str | None = None,
    location: str | os.PathLike | None = None,
    model_config: Any = None,
) -> None:
    """ConfigError where `max_length` tokens (special tokens included, as the encoders count
    them) do not fit the model's position embeddings: past them a BERT or GPT-2 fails with
    ``IndexError: index out of range in self`` or a tensor size mismatch, on the first
    sentence that long. `key`: the config key that set `max_length`; unknown (a job sees
    the merged training settings only), the message names every key that can set it.
    `model_config`: a loaded config, else :func:`read_model_config` (nothing to check where
    neither is available)."""
    if model_config is None:
        model_config = read_model_config(spec, location)
    found = position_limit(model_config) if model_config is not None else None
    if found is None or max_length <= found[0]:
        return
    limit, why = found
    if spec.kind == "scratch" and spec.scratch:
        why = f"{spec.key}.scratch.max_position {spec.scratch['max_position']}"
    if key is None:
        task_key = f"tasks.{task}.training.max_length" if task else "tasks.<id>.training.max_length"
        what = (
            f"max_length {max_length} (set by training.max_length, or by {task_key} or "
            f"{spec.key}.training.max_length where one of them is set)"
        )
    else:
        what = str(max_length)
    raise ConfigError(
        f"{what} tokens do not fit {spec.key} (source: {spec.source}), whose position "
        f"embeddings cover {limit} ({why}), special tokens included: set it to {limit} or less",
        key,
    )


# --------------------------------------------------------------------------------------------
# identity: what re-runs a local model's jobs when its files change


def _digest_cache() -> Path | None:
    """Where file digests are cached (None: no home directory to cache them in)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return None if root.startswith("~") else Path(root) / "bioprobe" / "file-digests.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """sha256 of each file by name, each file read only when its size, mtime or inode differ
    from the last time (a cache in ``$XDG_CACHE_HOME/bioprobe``, default ``~/.cache``; without
    a writable cache every call reads every file)."""
    cache_path = _digest_cache()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8")) if cache_path else {}
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        cache = {}
    out, changed = {}, False
    for path in paths:
        real = path.resolve()
        st = real.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = cache.get(str(real))
        if isinstance(hit, dict) and hit.get("stat") == stamp and hit.get("sha256"):
            out[path.name] = str(hit["sha256"])
            continue
        out[path.name] = _sha256(real)
        cache[str(real)] = {"stat": stamp, "sha256": out[path.name]}
        changed = True
    if changed and cache_path is not None:
        cache = {k: v for k, v in cache.items() if Path(k).is_file()}
        with contextlib.suppress(OSError):  # the cache only saves time
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, sort_keys=True), encoding="utf-8")
            os.replace(tmp, cache_path)
    return out


def model_digest(location: str | os.PathLike) -> str:
    """A checksum of the files of model directory `location`: names and contents of its files
    (top level, as ``from_pretrained`` reads them; hidden files and ``*.md`` left out).

    The content, not the modification time: a reinstalled package or a model copied without
    its times is the same model and re-runs nothing, while a replaced weight or tokenizer file
    is another. Each file is read once per change of its size or mtime (a cache).
    """
    root = Path(location)
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(".md")
    )
    lines = "".join(f"{name}\t{sha}\n" for name, sha in _file_digests(files).items())
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


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
    """The tokenizer of a model (`location` defaults to the spec's own), via load_tokenizer.

    Refused (one error naming ``models.<id>.source``) where the directory has no tokenizer
    files or the tokenizer loaded has no vocabulary beyond its special tokens.
    """
    where = _location(spec, location)
    check_tokenizer_files(where, spec)
    tokenizer = load_tokenizer(
        where,
        revision=_hub_kwargs(spec, where).get("revision"),
        trust_remote_code=spec.trust_remote_code,
    )
    _check_vocabulary(tokenizer, where, spec)
    return tokenizer


def _check_vocabulary(tokenizer: Any, where: str, spec: ModelSpec) -> None:
    """A tokenizer whose vocabulary is its special tokens alone turns every word into one of
    them (transformers builds one from config.json where the vocabulary files are missing)."""
    specials = set(tokenizer.all_special_tokens)
    if len(tokenizer) > len(specials) + len(tokenizer.get_added_vocab()):
        return  # more entries than special and added tokens (cheap; get_vocab copies it all)
    if any(token not in specials for token in tokenizer.get_vocab()):
        return
    raise ConfigError(
        f"the tokenizer of {where} ({type(tokenizer).__name__}) has no vocabulary, only its "
        f"{len(specials)} special tokens: every word would become an unknown token. Save the "
        "tokenizer the model was trained with into that directory (tokenizer.save_pretrained)",
        f"{spec.key}.source",
    )


def check_weights(location: str | os.PathLike, spec: ModelSpec) -> None:
    """Refuse a local directory with a damaged safetensors file (:func:`check_safetensors`), or
    whose only weights are pickles, unless the spec allows pickle."""
    path = Path(location)
    check_safetensors(path, spec)
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


def _weights_file(where: str) -> Path:
    """The weights file of a directory that failed to load (the directory if not one file)."""
    found = sorted(Path(where).glob("*.safetensors")) if Path(where).is_dir() else []
    return found[0] if len(found) == 1 else Path(where)


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
    return tasks.get(task_type).auto_class()


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
    without it a GPT-2 sequence head cannot pool a padded batch. `dtype` defaults to the
    inference dtype (:func:`weights_dtype` with :func:`inference_half`).
    """
    extra = {
        **tasks.get(task_type).head_kwargs(labels),
        "ignore_mismatched_sizes": True,
        "attn_implementation": attn_implementation,
    }
    where = _location(spec, location)
    auto = _auto_class(task_type)
    head_seed = None if seed is None else derive_seed("head", seed)
    return _load_checked(auto, where, spec, extra, dtype, quantization_config, tokenizer, head_seed)


def _load_checked(
    auto: Any,
    where: str,
    spec: ModelSpec,
    extra: dict[str, Any],
    dtype: Any,
    quantization_config: Any,
    tokenizer: Any,
    seed: int | None,
) -> Any:
    """`auto.from_pretrained(where)` as every loader of a checkpoint does it: its weights
    checked, safetensors only unless allowed, remote code only if trusted, `dtype` (default
    the inference dtype), weights the checkpoint lacks drawn from `seed` (the global RNG left
    as it was), ``config.pad_token_id`` from the tokenizer. `extra`: the caller's arguments
    (None values left out)."""
    import torch

    check_weights(where, spec)
    kwargs: dict[str, Any] = {
        **_hub_kwargs(spec, where),
        "trust_remote_code": spec.trust_remote_code,
        "use_safetensors": None if spec.allow_pickle else True,
    }
    optional = {
        **extra,
        "dtype": weights_dtype(spec, inference_half()) if dtype is None else dtype,
        "quantization_config": quantization_config,  # qlora's 4-bit base (bioprobe.methods)
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    if tokenizer is None:
        tokenizer = load_tokenizer_for(spec, where)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = _from_pretrained(auto, where, spec, kwargs)
    _set_pad(model, tokenizer)
    return model


def load_language_model(
    location: str | os.PathLike | None,
    *,
    spec: ModelSpec,
    dtype: Any = None,
    tokenizer: Any = None,
    seed: int = 0,
    quantization_config: Any = None,
) -> Any:
    """The model with its language-modelling head, as prompting runs it: a decoder's causal LM
    (``AutoModelForCausalLM``) or an encoder-decoder's (``AutoModelForSeq2SeqLM``), in eval
    mode. A checkpoint without an LM head (a scratch build, an encoder-only save) gets one
    drawn from `seed`; GPT-2, LLaMA-style and T5 builds tie it to the input embeddings.
    Same weight checks and dtype as :func:`load_model_for_task`; `quantization_config`: qlora's
    4-bit base for instruction tuning (bioprobe.methods)."""
    import transformers

    where = _location(spec, location)
    config = read_model_config(spec, where) or {}
    auto = (
        transformers.AutoModelForSeq2SeqLM
        if is_encoder_decoder_config(config)
        else transformers.AutoModelForCausalLM
    )
    lm_seed = derive_seed("lm-head", seed)
    model = _load_checked(auto, where, spec, {}, dtype, quantization_config, tokenizer, lm_seed)
    return model.eval()


def _from_pretrained(auto: Any, where: str, spec: ModelSpec, kwargs: dict[str, Any]) -> Any:
    """`auto.from_pretrained`; refused pickles and unreadable weights as one line naming the key."""
    try:
        with _refuse_remote_code(spec):
            return auto.from_pretrained(where, **kwargs)
    except OSError as exc:
        if not spec.allow_pickle and "safetensors" in str(exc):
            raise ConfigError(
                f"{where} has no safetensors weights ({exc}); set "
                f"'{spec.key}.allow_pickle: true' to accept pickle weights if you trust them",
                f"{spec.key}.allow_pickle",
            ) from exc
        raise
    except Exception as exc:  # what the header check lets through, as one line too
        if type(exc).__name__ != "SafetensorError":
            raise
        problem = f"safetensors cannot read it ({exc})"
        raise _weights_error(spec, _weights_file(where), problem) from exc


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
            **tasks.get(task_type).head_kwargs(labels),
        )
    kwargs: dict[str, Any] = {
        "trust_remote_code": spec.trust_remote_code,
        "dtype": weights_dtype(spec, inference_half()) if dtype is None else dtype,
    }
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if tokenizer is None:
        tokenizer = load_tokenizer_for(spec, where)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("random-init", seed))
        model = _auto_class(task_type).from_config(config, **kwargs)
    _set_pad(model, tokenizer)
    return model.eval()
