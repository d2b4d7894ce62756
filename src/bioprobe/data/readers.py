"""Readers that turn raw corpora into canonical records, validating every row as they read.

Canonical records (the contract every later stage reads):
  NER   {"id": str, "tokens": [str, ...], "tags": [str, ...]}
  pair  {"id": str, "text_a": str, "text_b": str, "label": str}

Every problem is one `InputError` that names where it was found: file and 1-based line for
text files; dataset, split and 0-based row for Hugging Face datasets. Files are read line by
line, so memory grows with the records kept, never with a whole-file string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bioprobe.errors import InputError
from bioprobe.hub import is_hub_id

DOCSTART = "-DOCSTART-"
IOB2_TAG = re.compile(r"O|[BI]-\S+")
HUB_PARQUET_REVISION = "refs/convert/parquet"
DEFAULT_FIELDS = {
    "id": None,
    "text": "text",
    "text_a": "text_a",
    "text_b": "text_b",
    "label": "label",
    "labels": "labels",
    "score": "score",
    "tokens": "tokens",
    "tags": "tags",
}


class RowProblem(ValueError):
    """A problem in one row; the caller turns it into an InputError with the row's location."""


# --- tags and labels ---


def is_iob2(tag: str) -> bool:
    """True for `O`, `B-TYPE` and `I-TYPE` (syntax only: an I- after O is kept as it is)."""
    return IOB2_TAG.fullmatch(tag) is not None


def tag_type(tag: str) -> str:
    """The entity type of a tag (`B-Disease` -> `Disease`); `O` and bare types stay as they are."""
    return tag[2:] if tag[:2] in ("B-", "I-") else tag


#: the one entity type of the `single` label scheme (BLURB scores JNLPBA with its types merged)
SINGLE_TYPE = "ENTITY"
#: the schemes `convert_tag` applies: the config's `label_scheme` values, and `io`, which
#: the pico task type reads its tags with
TAG_SCHEMES = ("bio", "type", "single", "io")


def convert_tag(tag: str, label_scheme: str) -> str:
    """Apply a label scheme to an IOB2 tag: `bio` keeps it, `type` collapses B-X/I-X to X,
    `single` merges every type into one (B-X -> B-ENTITY), `io` keeps O and I-X and rejects a
    B- tag (a `RowProblem`, which the reader names by file and line)."""
    if label_scheme == "bio":
        return tag
    if label_scheme == "type":
        return tag_type(tag)
    if label_scheme == "single":
        return tag if tag == "O" else f"{tag[:2]}{SINGLE_TYPE}"
    if label_scheme == "io":
        if tag.startswith("B-"):
            # EBM-NLP as BLURB ships it marks spans with I- only: a B- tag means another format
            raise RowProblem(
                f"tag {tag!r}: pico tags are IO (O or I-TYPE, as in BLURB's EBM-NLP), "
                "not B-/I-; for a BIO corpus use type: ner"
            )
        return tag
    raise ValueError(
        f"unknown label_scheme {label_scheme!r} (expected one of {', '.join(TAG_SCHEMES)})"
    )


class LabelCheck:
    """The allowed labels (None: anything goes) and where that set came from, for the message."""

    def __init__(self, labels: Collection[str] | None, origin: str | None = None):
        self.allowed = None if labels is None else frozenset(labels)
        self.shown = None if labels is None else ", ".join(labels)
        self.origin = origin or "the configured labels"

    def __call__(self, label: str) -> None:
        if self.allowed is not None and label not in self.allowed:
            raise RowProblem(f"unknown label {label!r}: not in {self.origin} ({self.shown})")


class UniqueIds:
    """Remembers where each id was first seen, so a duplicate names both places."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def __call__(self, example_id: str, where: str) -> None:
        if example_id in self.first:
            raise RowProblem(
                f"duplicate id {example_id!r} (first seen at {self.first[example_id]})"
            )
        self.first[example_id] = where


def default_id(split: str, index: int) -> str:
    return f"{split}-{index:06d}"


# --- text files ---


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line break); non-UTF-8 bytes name their line."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror}", path) from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"bytes that are not UTF-8 (byte {exc.start + 1} of the line)", path, number
                ) from None
            if number == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the data
            yield number, text.rstrip("\r\n")


def read_bio_tsv(
    path: str | Path,
    label_scheme: str = "bio",
    split: str | None = None,
    *,
    labels: Collection[str] | None = None,
    labels_origin: str | None = None,
) -> list[dict]:
    """Read CoNLL-style `token<TAB>tag` lines, a blank line between sentences.

    `-DOCSTART-` lines end a sentence and are dropped. Tags must be IOB2; `label_scheme="type"`
    collapses them to entity types. `labels` (in the output scheme) restricts the tags allowed.
    Ids are `{split}-{index:06d}`, `split` defaulting to the file stem.
    """
    path = Path(path)
    split = split or path.stem
    check = LabelCheck(labels, labels_origin)
    convert_tag("O", label_scheme)  # fail fast on an unknown scheme
    records: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            records.append(
                {"id": default_id(split, len(records)), "tokens": [*tokens], "tags": [*tags]}
            )
            tokens.clear()
            tags.clear()

    for number, line in numbered_lines(path):
        if not line.strip() or line.startswith(DOCSTART):
            flush()
            continue
        try:
            token, tag = _token_and_tag(line, label_scheme, check)
        except RowProblem as exc:
            raise InputError(str(exc), path, number) from None
        tokens.append(token)
        tags.append(tag)
    flush()
    if not records:
        raise InputError("no examples (the split is empty)", path)
    return records


def read_tsv(
    path: str | Path,
    task_type: str,
    fields: Mapping[str, str | None],
    columns: Sequence[str] | None = None,
    split: str | None = None,
    *,
    task_cfg: Mapping[str, Any] | None = None,
    labels: Collection[str] | None = None,
    labels_origin: str | None = None,
) -> list[dict]:
    """Read a tab-separated table, one example per line, into the task type's records (BLURB's
    TSVs: ChemProt, DDI, GAD, BIOSSES, HoC, BioASQ).

    `columns` names the columns of a file without a header (BLURB's ChemProt/DDI: `id sentence
    label`); None reads the names from the first line. `fields` maps the record's keys to column
    names. Cells are taken verbatim (no quoting: BLURB's files have none); blank lines are
    skipped; a line with another number of cells than the header names its line.
    """
    from bioprobe import tasks  # the task types read their rows with this module's helpers

    kind = tasks.get(task_type)
    path = Path(path)
    split = split or path.stem
    fields = {**DEFAULT_FIELDS, **fields}
    check = LabelCheck(labels, labels_origin)
    names = list(columns) if columns else None
    unique = UniqueIds()
    records: list[dict] = []
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            if names is None:
                names = _header(cells, kind.record_keys, fields)
                continue
            if len(cells) != len(names):
                raise RowProblem(
                    f"{len(cells)} tab-separated cells, expected {len(names)} ({', '.join(names)})"
                )
            row = dict(zip(names, cells, strict=True))
            record = kind.record(
                row, fields, default_id(split, len(records)), check, task_cfg or {}, None
            )
            unique(record["id"], f"line {number}")
        except RowProblem as exc:
            raise InputError(str(exc), path, number) from None
        records.append(record)
    if not records:
        raise InputError("no examples (the split is empty)", path)
    return records


def _header(cells: Sequence[str], keys: Sequence[str], fields: Mapping[str, str | None]):
    """The column names of a header line; a field the task needs and the header lacks is named."""
    names = [c.strip() for c in cells]
    wanted = [fields[key] for key in keys] + ([fields["id"]] if fields["id"] else [])
    missing = [name for name in wanted if name not in names]
    if missing:
        raise RowProblem(
            f"the header ({', '.join(names)}) has no column {', '.join(map(repr, missing))}: "
            "set the task's `fields` to the file's column names, or `columns` for a file "
            "without a header"
        )
    return names


def _token_and_tag(line: str, label_scheme: str, check: LabelCheck) -> tuple[str, str]:
    fields = line.split("\t")
    if len(fields) != 2:
        raise RowProblem(
            f"token/tag mismatch: expected 'token<TAB>tag' (2 tab-separated fields), "
            f"found {len(fields)}"
        )
    token, tag = fields[0].strip(), fields[1].strip()
    if not token:
        raise RowProblem("empty token")
    if tag in ("B", "I"):  # BLURB's single-type NER files tag B/I/O without a type
        tag = f"{tag}-{SINGLE_TYPE}"
    if not is_iob2(tag):
        raise RowProblem(f"tag {tag!r} is not IOB2 (expected O, B-TYPE or I-TYPE)")
    tag = convert_tag(tag, label_scheme)
    check(tag)
    return token, tag


def read_pairs_jsonl(
    path: str | Path,
    fields: Mapping[str, str | None],
    split: str | None = None,
    *,
    labels: Collection[str] | None = None,
    labels_origin: str | None = None,
    task_type: str = "pair",
    task_cfg: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Read one JSON object per line into pair records; keys other than `fields` are ignored.

    `fields` maps text_a / text_b / label (and optionally id) to the source's keys, e.g. MedNLI's
    sentence1 / sentence2 / gold_label / pairID. Blank lines are skipped. `task_type`: the type
    whose records the rows become (`TaskType.record`; similarity reads a score, not a label).
    """
    from bioprobe import tasks  # the task types read their rows with this module's helpers

    kind = tasks.get(task_type)
    path = Path(path)
    split = split or path.stem
    fields = {**DEFAULT_FIELDS, **fields}
    check = LabelCheck(labels, labels_origin)
    unique = UniqueIds()
    records: list[dict] = []
    first = True
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            if first:
                check_json_lines_start(line)
                first = False
            row = json_object(line)
            fallback = default_id(split, len(records))
            record = kind.record(row, fields, fallback, check, task_cfg or {}, None)
            unique(record["id"], f"line {number}")
        except RowProblem as exc:
            raise InputError(str(exc), path, number) from None
        records.append(record)
    if not records:
        raise InputError("no examples (the split is empty)", path)
    return records


def check_json_lines_start(line: str) -> None:
    """The first non-blank line: a file that is one JSON document (an array of objects, or an
    object spread over several lines) is said to be one, not reported as a broken line."""
    text = line.strip()
    if text.startswith("["):
        raise RowProblem(
            "the file looks like one JSON array, not JSON Lines: write one JSON object per line "
            "(no enclosing [ ], no commas between objects; e.g. jq -c '.[]' in.json > out.jsonl)"
        )
    if text == "{":
        raise RowProblem(
            "the file looks like JSON spread over several lines, not JSON Lines: write each "
            "JSON object on one line (e.g. jq -c . in.json > out.jsonl)"
        )


def json_object(line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RowProblem(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(row, dict):
        raise RowProblem(f"expected a JSON object, found {type(row).__name__}")
    return row


# --- row validation shared by JSONL and Hugging Face datasets ---


def _field(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        raise RowProblem(f"missing field {name!r}")
    return row[name]


def _text(row: Mapping[str, Any], name: str) -> str:
    value = _field(row, name)
    if not isinstance(value, str):
        raise RowProblem(f"field {name!r} must be a string, found {type(value).__name__}")
    if not value.strip():
        raise RowProblem(f"empty text in field {name!r}")
    return value


def _example_id(row: Mapping[str, Any], id_field: str | None, fallback: str) -> str:
    """The source's id (ints are fine: PubMed ids) or, without an id field, the fallback."""
    if id_field is None:
        return fallback
    value = _field(row, id_field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowProblem(f"id field {id_field!r} must be a string or integer")
    if not str(value).strip():
        raise RowProblem(f"empty id in field {id_field!r}")
    return str(value)


def _class_name(value: Any, names: Sequence[str] | None, what: str) -> str:
    """A string label as it is; an integer through `names` (ClassLabel / tag_names) if known."""
    if isinstance(value, str):
        if not value.strip():
            raise RowProblem(f"empty {what}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowProblem(f"{what} must be a string or integer, found {type(value).__name__}")
    if names is None:
        return str(value)
    if not 0 <= value < len(names):
        raise RowProblem(f"{what} {value} has no name (names: {', '.join(names)})")
    return names[value]


def pair_record(
    row: Mapping[str, Any],
    fields: Mapping[str, str | None],
    fallback_id: str,
    check: LabelCheck,
    label_names: Sequence[str] | None = None,
) -> dict:
    """Validate one source row and return the canonical pair record."""
    record = {
        "id": _example_id(row, fields["id"], fallback_id),
        "text_a": _text(row, fields["text_a"]),
        "text_b": _text(row, fields["text_b"]),
        "label": _class_name(_field(row, fields["label"]), label_names, "label"),
    }
    check(record["label"])
    return record


def ner_record(
    row: Mapping[str, Any],
    fields: Mapping[str, str | None],
    fallback_id: str,
    check: LabelCheck,
    label_scheme: str,
    tag_names: Sequence[str] | None = None,
) -> dict:
    """Validate one source row with token and tag lists and return the canonical NER record."""
    tokens, tags = _field(row, fields["tokens"]), _field(row, fields["tags"])
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise RowProblem("tokens and tags must be lists")
    if len(tokens) != len(tags):
        raise RowProblem(f"token/tag mismatch: {len(tokens)} tokens, {len(tags)} tags")
    if not tokens:
        raise RowProblem("empty sentence (no tokens)")
    if any(not isinstance(t, str) or not t.strip() for t in tokens):
        raise RowProblem("empty token (or a token that is not a string)")
    out_tags = []
    for value in tags:
        if isinstance(value, int) and tag_names is None:
            raise RowProblem(
                f"integer tag {value} needs `tag_names` in the task config "
                "(the dataset declares no ClassLabel names)"
            )
        tag = _class_name(value, tag_names, "tag")
        if not is_iob2(tag):
            raise RowProblem(f"tag {tag!r} is not IOB2 (expected O, B-TYPE or I-TYPE)")
        out_tags.append(convert_tag(tag, label_scheme))
        check(out_tags[-1])
    return {"id": _example_id(row, fields["id"], fallback_id), "tokens": tokens, "tags": out_tags}


# --- Hugging Face datasets ---


def read_hf(
    path_or_id: str | Path,
    split_spec: str,
    task_type: str,
    fields: Mapping[str, str | None],
    tag_names: Sequence[str] | None = None,
    revision: str | None = None,
    *,
    split: str | None = None,
    label_scheme: str = "bio",
    task_cfg: Mapping[str, Any] | None = None,
    labels: Collection[str] | None = None,
    labels_origin: str | None = None,
) -> list[dict]:
    """Read one split of a Hugging Face dataset into canonical records (`task_cfg`: the task's
    config entry, which the task type reads; default: just `label_scheme`).

    `path_or_id` is a `save_to_disk` directory (a DatasetDict, or one saved Dataset per split
    in `path/split_spec`), a directory of parquet files (`split_spec` is a file name or glob
    relative to it, or a split name found as `{split}.parquet`, `{split}/*.parquet`,
    `data/{split}-*.parquet` or `*/{split}/*.parquet`), or a Hub dataset id. `datasets>=4`
    dropped loading scripts, so Hub datasets are read from their auto-converted parquet branch
    (`refs/convert/parquet`, `split_spec` = `split` or `config/split`; `revision` pins a commit
    of that branch). Integer tags/labels are named by `tag_names`, else by the ClassLabel feature.
    """
    from bioprobe import tasks  # the task types read their rows with this module's helpers

    kind = tasks.get(task_type)
    fields = {**DEFAULT_FIELDS, **fields}
    source = str(path_or_id)
    where = f"{source}[{split_spec}]"
    dataset = open_hf(source, split_spec, revision, where)
    wanted = kind.record_keys
    columns = [fields[key] for key in wanted] + ([fields["id"]] if fields["id"] else [])
    require_columns(dataset, columns, where)
    names = list(tag_names) if tag_names else _class_names(dataset, fields[wanted[-1]])
    check = LabelCheck(labels, labels_origin)
    scheme = task_cfg or {"label_scheme": label_scheme}
    split = split or _split_name(split_spec)
    unique = UniqueIds()
    records: list[dict] = []
    for index, row in enumerate(hf_rows(dataset.select_columns(columns), columns, where)):
        fallback = default_id(split, index)
        try:
            record = kind.record(row, fields, fallback, check, scheme, names)
            unique(record["id"], f"row {index}")
        except RowProblem as exc:
            raise InputError(f"row {index}: {exc}", where) from None
        records.append(record)
    if not records:
        raise InputError("no examples (the split is empty)", where)
    return records


def _split_name(split_spec: str) -> str:
    """A readable split name for generated ids: `data/train-*.parquet` -> `train`."""
    stem = Path(split_spec).name.split(".")[0]
    return re.sub(r"[^\w-]+", "", stem).strip("-") or "split"


def open_hf(source: str, split_spec: str, revision: str | None, where: str):
    local = Path(source).expanduser()
    if local.is_dir():
        return _open_local(local, split_spec, where)
    if local.exists():
        raise InputError("expected a dataset directory, found a file", source)
    if is_hub_id(source):
        return _open_hub(source, split_spec, revision, where)
    raise InputError("dataset directory is missing (and it is not a Hub dataset id)", source)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def _open_local(root: Path, split_spec: str, where: str):
    import datasets  # heavy import, only for hf tasks

    try:
        if _is_saved_dataset(root / split_spec):
            return datasets.load_from_disk(str(root / split_spec))
        if (root / "dataset_dict.json").is_file():
            splits = datasets.load_from_disk(str(root))
            if split_spec not in splits:
                raise InputError(f"no split {split_spec!r} (splits: {', '.join(splits)})", root)
            return splits[split_spec]
    except InputError:
        raise
    except Exception as exc:  # datasets/pyarrow raise many types for a corrupt directory
        raise InputError(f"cannot load the saved dataset: {exc}", where) from exc
    files = _parquet_files(root, split_spec)
    if not files:
        raise InputError(
            f"no saved dataset or parquet files for split {split_spec!r} "
            f"(looked for {', '.join(_parquet_patterns(split_spec))})",
            root,
        )
    return _load_parquet([str(f) for f in files], where)


def _parquet_patterns(split_spec: str) -> list[str]:
    if any(c in split_spec for c in "*?[") or split_spec.endswith(".parquet"):
        return [split_spec]
    return [
        f"{split_spec}.parquet",
        f"{split_spec}/*.parquet",
        f"data/{split_spec}-*.parquet",
        f"*/{split_spec}/*.parquet",
    ]


def _parquet_files(root: Path, split_spec: str) -> list[Path]:
    """The files of the first pattern that matches anything, sorted (shard order is data order)."""
    for pattern in _parquet_patterns(split_spec):
        files = sorted(p for p in root.glob(pattern) if p.is_file())
        if files:
            return files
    return []


def _load_parquet(data_files: list[str] | str, where: str):
    """Stream parquet rows: nothing is converted into the datasets cache."""
    import datasets

    try:
        return datasets.load_dataset(
            "parquet", data_files={"data": data_files}, split="data", streaming=True
        )
    except Exception as exc:
        raise InputError(f"cannot read parquet data: {exc}", where) from exc


def _open_hub(repo_id: str, split_spec: str, revision: str | None, where: str):
    """A Hub dataset's parquet conversion: hf://datasets/{id}@refs%2Fconvert%2Fparquet/{config}/{split}/."""
    base = f"hf://datasets/{repo_id}@{quote(revision or HUB_PARQUET_REVISION, safe='')}"
    config, _, split = split_spec.rpartition("/")
    config = config or _hub_config(base, repo_id)
    return _load_parquet(f"{base}/{config}/{split}/*.parquet", where)


def _hub_config(base: str, repo_id: str) -> str:
    """The dataset's only config (or `default`); several configs need `config/split`."""
    from huggingface_hub import HfFileSystem

    try:
        entries = HfFileSystem().ls(base.removeprefix("hf://"), detail=True)
    except Exception as exc:  # offline, unknown repo, no parquet branch, ...
        raise InputError(
            f"no such local directory, and the parquet conversion of Hub dataset {repo_id!r} "
            f"cannot be listed (needs network access): {exc}",
            repo_id,
        ) from exc
    configs = sorted(Path(e["name"]).name for e in entries if e.get("type") == "directory")
    if "default" in configs or len(configs) == 1:
        return "default" if "default" in configs else configs[0]
    raise InputError(
        f"several configs ({', '.join(configs)}): write the split as 'config/split'", repo_id
    )


def require_columns(dataset, columns: Iterable[str], where: str) -> None:
    available = list(dataset.column_names or [])
    missing = [c for c in columns if c not in available]
    if available and missing:
        raise InputError(f"missing field {missing[0]!r} (columns: {', '.join(available)})", where)


def _class_names(dataset, column: str) -> list[str] | None:
    """ClassLabel names of a column (also inside a list feature), if the dataset declares them."""
    feature = (dataset.features or {}).get(column)
    while feature is not None and not hasattr(feature, "names"):
        feature = getattr(feature, "feature", None)
    return list(feature.names) if feature is not None else None


def hf_rows(dataset, columns: list[str], where: str) -> Iterator[dict]:
    """Rows in batches (Arrow to Python is much faster batched than row by row)."""
    try:
        for batch in dataset.iter(batch_size=1000):
            for values in zip(*(batch[c] for c in columns), strict=True):
                yield dict(zip(columns, values, strict=True))
    except KeyError as exc:
        raise InputError(f"missing field {exc.args[0]!r}", where) from None
