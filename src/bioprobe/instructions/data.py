"""Instruction sets: Alpaca-style records read, validated and subsampled like a training split.

Canonical record: ``{"id": str, "instruction": str, "input": str, "output": str}`` (``input``
is ``""`` where the source has none). Sources (``instructions.<id>.format``):

- ``json``: one JSON array of objects in a file, the layout of the Hub's
  ``bio-nlp-umass/bioinstruct`` (``biomed_instruct_25k.json``); `path` is the file or a
  directory holding exactly one ``*.json`` file (a downloaded dataset repository);
- ``jsonl``: one JSON object per line;
- ``hf``: a ``datasets`` dataset saved with ``save_to_disk``, a parquet directory or a Hub id
  (its parquet conversion), opened as :func:`bioprobe.data.readers.read_hf` opens task data.

`fields` renames the source's keys (``{"instruction": "prompt", "output": "answer"}``); a key
left out keeps its canonical name. Every problem is one :class:`~bioprobe.errors.InputError`
naming the file and the line where the record starts (json, jsonl) or the dataset and its
0-based row (hf): a record without an output, an empty instruction, a field that is not a
string, malformed JSON.

Subsets (:func:`instruction_order`, :func:`subsample`): one seeded order per seed whose
prefixes are the sizes, built by :func:`bioprobe.data.subsample.stratified_order` as task
training subsets are, so 30 % of a set is inside its 100 % for the same seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.data import readers
from bioprobe.data.readers import RowProblem
from bioprobe.data.subsample import read_subset, stratified_order, take
from bioprobe.errors import ConfigError, InputError
from bioprobe.io import write_json

#: the ``format`` values
FORMATS = ("json", "jsonl", "hf")
#: the canonical keys, and the source key each is read from unless `fields` renames it
DEFAULT_FIELDS = {"instruction": "instruction", "input": "input", "output": "output"}
#: the keys a record must have (``input`` is optional)
REQUIRED = ("instruction", "output")


def resolve_fields(fields: Mapping[str, str] | None, key: str = "instructions") -> dict[str, str]:
    """The source key of each canonical key; an unknown canonical key is a ConfigError naming
    `key`.fields.<it>."""
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(DEFAULT_FIELDS))
    if unknown:
        raise ConfigError(
            f"not a field of an instruction record (expected {', '.join(DEFAULT_FIELDS)})",
            f"{key}.fields.{unknown[0]}",
        )
    return {**DEFAULT_FIELDS, **fields}


def instruction_record(row: Any, fields: Mapping[str, str], record_id: str) -> dict:
    """Validate one source row and return the canonical record (a `RowProblem` if invalid)."""
    if not isinstance(row, dict):
        raise RowProblem(f"expected a JSON object, found {type(row).__name__}")
    record = {"id": record_id}
    for key in DEFAULT_FIELDS:
        name = fields[key]
        value = row.get(name)
        if value is None:
            if key in REQUIRED:
                raise RowProblem(f"no {key} (field {name!r})")
            value = ""  # no input: the prompt has no input block
        if not isinstance(value, str):
            raise RowProblem(f"field {name!r} must be a string, found {type(value).__name__}")
        if key in REQUIRED and not value.strip():
            raise RowProblem(f"empty {key} (field {name!r})")
        record[key] = value
    return record


def read_instructions(
    path: str | Path,
    format: str,
    fields: Mapping[str, str] | None = None,
    *,
    split: str = "train",
    revision: str | None = None,
    key: str = "instructions",
) -> list[dict]:
    """Read and validate an instruction set (see the module docstring). `split` and `revision`
    are the ``hf`` format's: the split of a saved dataset or parquet directory, the commit of
    a Hub dataset's parquet conversion. `key`: the config entry, which errors in `fields` and
    `format` name."""
    fields = resolve_fields(fields, key)
    if format == "json":
        records = list(_json_array(_json_file(Path(path)), fields))
    elif format == "jsonl":
        records = list(_json_lines(Path(path), fields))
    elif format == "hf":
        records = _hf(str(path), split, revision, fields)
    else:
        raise ConfigError(f"unknown format {format!r} (expected {', '.join(FORMATS)})",
                          f"{key}.format")  # fmt: skip
    if not records:
        raise InputError("no instructions (the set is empty)", path)
    return records


def _record_id(index: int) -> str:
    return f"instruction-{index:06d}"


# --- json: one array; each record's line found from the raw text ---


def _json_file(path: Path) -> Path:
    """`path` itself, or the one ``*.json`` file of a directory (a downloaded dataset repo)."""
    if not path.is_dir():
        return path
    found = sorted(p for p in path.glob("*.json") if p.is_file())
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise InputError(
            f"expected one *.json file in the directory, found {len(found)} ({listed}): give "
            "the file as the path",
            path,
        )
    return found[0]


def _read_text(path: Path) -> str:
    """The whole file (a JSON array is one document); non-UTF-8 bytes name their line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror}", path) from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError("bytes that are not UTF-8", path, line) from None


def _json_array(path: Path, fields: Mapping[str, str]) -> Iterator[dict]:
    """The array's elements one by one with the decoder's `raw_decode`, so that a bad record
    names the line where it starts (json.load would only say that the file is wrong)."""
    text = _read_text(path)
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if not text.startswith("[", pos):
        jsonl = " (one object per line is format: jsonl)" if text.startswith("{", pos) else ""
        raise InputError(f"expected a JSON array of records{jsonl}", path, _line(text, pos))
    pos = _skip_space(text, pos + 1)
    index = 0
    closed = text.startswith("]", pos)  # `[]`: no records
    while not closed:
        start = pos
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problem = f"invalid JSON: {exc.msg} (column {exc.colno})"
            raise InputError(problem, path, exc.lineno) from None
        try:
            yield instruction_record(row, fields, _record_id(index))
        except RowProblem as exc:
            raise InputError(f"record {index}: {exc}", path, _line(text, start)) from None
        index += 1
        pos = _skip_space(text, pos)
        closed = text.startswith("]", pos)
        if not closed:
            if not text.startswith(",", pos):
                raise InputError("invalid JSON: expected ',' or ']' after a record", path,
                                 _line(text, pos))  # fmt: skip
            pos = _skip_space(text, pos + 1)
    after = _skip_space(text, pos + 1)
    if after != len(text):
        raise InputError("invalid JSON: text after the array", path, _line(text, after))


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line(text: str, pos: int) -> int:
    """The 1-based line of position `pos` (counted only for an error's message)."""
    return text.count("\n", 0, pos) + 1


# --- jsonl: one object per line, read as task data is ---


def _json_lines(path: Path, fields: Mapping[str, str]) -> Iterator[dict]:
    first, index = True, 0
    for number, line in readers.numbered_lines(path):
        if not line.strip():
            continue
        try:
            if first:
                readers.check_json_lines_start(line)
                first = False
            record = instruction_record(readers.json_object(line), fields, _record_id(index))
        except RowProblem as exc:
            raise InputError(str(exc), path, number) from None
        index += 1
        yield record


# --- hf: a saved dataset, a parquet directory or a Hub id, opened as task data is ---


def _hf(source: str, split: str, revision: str | None, fields: Mapping[str, str]) -> list[dict]:
    where = f"{source}[{split}]"
    dataset = readers.open_hf(source, split, revision, where)
    readers.require_columns(dataset, [fields[key] for key in REQUIRED], where)
    available = list(dataset.column_names or [])
    # the optional input column where the dataset has one (asked for where it does not say)
    columns = [fields[k] for k in DEFAULT_FIELDS
               if k in REQUIRED or fields[k] in available or not available]  # fmt: skip
    records = []
    for index, row in enumerate(readers.hf_rows(dataset.select_columns(columns), columns, where)):
        try:
            records.append(instruction_record(row, fields, _record_id(index)))
        except RowProblem as exc:
            raise InputError(f"row {index}: {exc}", where) from None
    return records


# --- subsets ---


def _stratum(record: Mapping[str, str]) -> bool:
    """Records with and without an input (the two prompt shapes) in proportion in every subset."""
    return bool(record["input"].strip())


def instruction_order(records: Sequence[Mapping[str, str]], seed: int) -> list[int]:
    """The seeded order whose prefixes are the subsets (nested across sizes)."""
    return stratified_order([_stratum(r) for r in records], seed)


def subsample(records: Sequence[dict], size: int, seed: int) -> list[dict]:
    """`size` percent of the set (rounded as task subsets are, at least one record for a
    positive size), nested across sizes for one seed."""
    return [records[i] for i in take(instruction_order(records, seed), size)]


def write_instruction_subsets(records: Sequence[dict], seed: int, path: str | Path) -> dict:
    """Write the order in the subsets file layout of task data (``{"seed", "n_train",
    "order"}``), which :func:`bioprobe.data.subsample.read_subset` reads back."""
    subsets = {"seed": seed, "n_train": len(records), "order": instruction_order(records, seed)}
    write_json(path, subsets)
    return subsets


def read_instruction_subset(
    records: Sequence[dict], subsets_file: str | Path, size: int
) -> list[dict]:
    """The `size` % subset of `records` named by a subsets file (:func:`write_instruction_subsets`);
    a file written for a set of another length is refused."""
    order = read_subset(subsets_file, size)
    n_train = json.loads(Path(subsets_file).read_text(encoding="utf-8"))["n_train"]
    if n_train != len(records):
        raise InputError(
            f"written for an instruction set of {n_train} records, this one has {len(records)}: "
            "run the subsample stage again",
            subsets_file,
        )
    return [records[i] for i in order]
