"""Task types as plug-ins: one module per type (`ner`, `pair`), found through `get`.

Every stage asks the task type (`bioprobe.tasks.get(labels_info["task_type"])`) how to read,
encode, score, dump and probe its examples, instead of branching on the type's name. Adding a
type is one module here (a `TaskType` subclass, registered below), its schema entry and its tests:
see docs/architecture.md.
"""

from __future__ import annotations

from bioprobe.tasks.base import TaskType
from bioprobe.tasks.multilabel import MultiLabel
from bioprobe.tasks.ner import NER
from bioprobe.tasks.pair import Pair
from bioprobe.tasks.pico import Pico
from bioprobe.tasks.relation import Relation
from bioprobe.tasks.similarity import Similarity

#: every task type by its config name (`tasks.<id>.type`)
REGISTRY: dict[str, TaskType] = {
    t.name: t for t in (NER(), Pair(), Pico(), Relation(), Similarity(), MultiLabel())
}


def get(name: str) -> TaskType:
    """The task type called `name`; an unknown name is a ValueError listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown task type {name!r} (expected one of {', '.join(sorted(REGISTRY))})"
        ) from None


def formats() -> dict[str, tuple[str, ...]]:
    """Each raw format and the task types it can hold."""
    out: dict[str, list[str]] = {}
    for t in REGISTRY.values():
        for fmt in t.formats:
            out.setdefault(fmt, []).append(t.name)
    return {fmt: tuple(names) for fmt, names in out.items()}


__all__ = ["REGISTRY", "TaskType", "formats", "get"]
