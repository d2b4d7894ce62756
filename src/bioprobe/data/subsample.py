"""Nested, stratified training subsets: one seeded permutation per (task, seed), sizes are prefixes.

Taking prefixes of one order makes 10 % ⊂ 30 % ⊂ 50 % ⊂ 100 % by construction, so curves over
size compare models trained on growing versions of the same data. The order interleaves the
strata evenly (systematic sampling: the k-th of m members of a stratum sits at (k + u) / m),
so every prefix holds each stratum in proportion, within one example.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from bioprobe import tasks
from bioprobe.errors import ConfigError, InputError
from bioprobe.io import read_json, write_json


def stratum(record: dict, task_type: str) -> tuple[str, ...]:
    """The record's stratum, as its task type defines it (pairs: the label; NER: the sorted
    entity types present)."""
    return tasks.get(task_type).stratum(record)


def subset_order(records: Sequence[dict], task_type: str, seed: int) -> list[int]:
    """A seeded permutation of `range(len(records))` whose every prefix is stratified."""
    return stratified_order([stratum(record, task_type) for record in records], seed)


def stratified_order(strata: Sequence[Hashable], seed: int) -> list[int]:
    """A seeded permutation of `range(len(strata))` whose every prefix holds each stratum (the
    i-th item's is `strata[i]`) in proportion; one stratum: a plain seeded permutation."""
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(strata):
        groups.setdefault(key, []).append(index)
    rng = np.random.default_rng(seed)
    indices: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for key in sorted(groups):  # sorted: the rng draws must not depend on record order
        members = rng.permutation(np.asarray(groups[key], dtype=np.int64))
        phase = rng.random()
        indices.append(members)
        keys.append((np.arange(len(members)) + phase) / len(members))
    if not indices:
        return []
    all_indices = np.concatenate(indices)
    return all_indices[np.argsort(np.concatenate(keys), kind="stable")].tolist()


def check_percent(percent: object) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int | np.integer):
        raise ConfigError(f"a size must be an integer percent, got {percent!r}", key="sizes")
    if not 0 <= percent <= 100:
        raise ConfigError(f"a size must be within 0..100, got {percent}", key="sizes")
    return int(percent)


def subset_size(n: int, percent: int) -> int:
    """round(percent % of n), halves rounded up, at least 1 for a positive percent."""
    percent = check_percent(percent)
    size = (2 * percent * n + 100) // 200  # exact integer round-half-up of percent * n / 100
    return max(size, 1) if percent > 0 and n > 0 else size


def take(order: Sequence[int], percent: int) -> list[int]:
    """The first `percent` % of the order (0 -> empty, 100 -> all)."""
    return list(order[: subset_size(len(order), percent)])


def write_subsets(records: Sequence[dict], task_type: str, seed: int, path: str | Path) -> dict:
    """Write `{"seed", "n_train", "order"}` (canonical JSON, byte-deterministic) and return it."""
    subsets = {
        "seed": seed,
        "n_train": len(records),
        "order": subset_order(records, task_type, seed),
    }
    write_json(path, subsets)
    return subsets


def read_subset(path: str | Path, percent: int) -> list[int]:
    """The training indices of a `percent` % subset, as written by `write_subsets`."""
    percent = check_percent(percent)
    path = Path(path)
    if not path.is_file():
        raise InputError("subset file is missing (run the subsample stage first)", path)
    data = read_json(path)
    order = data.get("order")
    if not isinstance(order, list) or sorted(order) != list(range(data.get("n_train", -1))):
        raise InputError("'order' is not a permutation of range(n_train)", path)
    return take(order, percent)
