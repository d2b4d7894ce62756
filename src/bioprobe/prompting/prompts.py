"""Prompt texts: an instruction, demonstrations drawn from the training split, the question.

A prompt is, in this order: the instruction line (with a blank line after it), each
demonstration (its template filled, the answer after it, a blank line), the question (its
template filled, nothing after it). The answer continues the prompt after one space, or, in a
chat template's assistant turn, directly. Nothing here imports torch: the config check runs
at planning.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bioprobe.errors import ConfigError

#: placeholders every template and instruction may hold besides the record's texts
SCHEME_FIELDS = {
    "choice": ("options",),
    "scale": ("options",),
    "per_label": ("options", "label"),
    "mentions": ("entity",),
}


@dataclass(frozen=True)
class Question:
    """One question a prompt asks: the template's placeholders, the answers it is scored on
    (empty for generated answers) and the gold answer, as a demonstration shows it."""

    fields: Mapping[str, str]
    options: tuple[str, ...]
    answer: str


def placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders of a template, in order ("{{" is a literal brace)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_template(template: str, allowed: Sequence[str], key: str) -> None:
    """ConfigError naming `key` for a placeholder the task type cannot fill, or a malformed
    template (an unclosed brace, a format spec)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"malformed template {template!r}: {exc}", key) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise ConfigError(
                f"unknown placeholder {{{name}}} (this task type's: "
                f"{', '.join('{' + a + '}' for a in allowed)})",
                key,
            )


def allowed_fields(task_type: Any) -> tuple[str, ...]:
    return (*task_type.prompt_fields, *SCHEME_FIELDS[task_type.prompt_scheme])


def check_config(config: Mapping[str, Any]) -> None:
    """Every prompting method's templates and instruction, and every task's instruction, hold
    only placeholders the task types can fill; a task type prompting cannot ask is refused."""
    from bioprobe import tasks

    prompting = [(mid, m) for mid, m in config["methods"].items() if m.get("kind") == "prompting"]
    if not prompting:
        return
    types = {tid: tasks.get(task["type"]) for tid, task in config["tasks"].items()}
    for task_id, task_type in types.items():
        if task_type.prompt_scheme is None:
            raise ConfigError(
                f"prompting methods cannot ask a {task_type.name} task", f"tasks.{task_id}.type"
            )
        instruction = config["tasks"][task_id].get("prompt", {}).get("instruction")
        if instruction is not None:
            allowed = allowed_fields(task_type)
            check_template(instruction, allowed, f"tasks.{task_id}.prompt.instruction")
    for method_id, method in prompting:
        for type_name, template in method.get("templates", {}).items():
            allowed = allowed_fields(tasks.get(type_name))
            check_template(template, allowed, f"methods.{method_id}.templates.{type_name}")
        if method.get("instruction") is not None:
            for task_type in types.values():
                allowed = allowed_fields(task_type)
                check_template(method["instruction"], allowed, f"methods.{method_id}.instruction")


@dataclass(frozen=True)
class PromptFormat:
    """How one run words its prompts: the template, the instruction, the chat template."""

    template: str
    instruction: str
    chat: bool

    @property
    def answer_separator(self) -> str:
        """Between a question and its answer: a space, or nothing in a chat's assistant turn."""
        return "" if self.chat else " "

    def fill(self, text: str, question: Question) -> str:
        return text.format_map({**question.fields, "options": ", ".join(question.options)})

    def text(self, question: Question, demos: Sequence[Question]) -> str:
        """The prompt's text: instruction, demonstrations with their answers, the question."""
        parts = []
        if self.instruction:
            parts.append(self.fill(self.instruction, question))
        for demo in demos:
            parts.append(f"{self.fill(self.template, demo)}{self.answer_separator}{demo.answer}")
        parts.append(self.fill(self.template, question))
        return "\n\n".join(parts)


def stratified_draw(
    records: Sequence[dict], k: int, stratum: Any, seed: int, what: str
) -> list[dict]:
    """`k` records drawn without replacement, spread over the strata (`stratum(record)`, a
    task's labels): strata in a seeded order take turns, each giving a random record of its
    own, so two shots of a binary task show both answers. Shuffled, so that the answer order
    carries no pattern. Seeded by `seed` and `what` alone: every model sees the same shots."""
    rng = random.Random(f"bioprobe-prompting:{what}:{seed}")
    groups: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(stratum(record), []).append(i)
    pools = [rng.sample(members, len(members)) for _, members in sorted(groups.items())]
    rng.shuffle(pools)
    chosen: list[int] = []
    while len(chosen) < min(k, len(records)):
        for pool in pools:
            if pool and len(chosen) < k:
                chosen.append(pool.pop())
    rng.shuffle(chosen)
    return [records[i] for i in chosen]
