"""How a prompting method asks each task type (its ``prompt_scheme``) and reads the answers
back into the task's predictions, which the task type then scores as any run's.

- **choice** (pair, relation): one question per example, the verbalised labels as answers;
  the prediction is the label whose answer is most likely (rank classification).
- **scale** (similarity): one question, the answers ``0`` to ``4``; the prediction is the mean
  score under the answers' probabilities (their likelihoods normalised over the five).
- **per_label** (multilabel): a yes/no question per label; the predicted set holds the labels
  answered yes more likely than no.
- **mentions** (ner, pico): a question per entity type, answered by generating the mentions
  (`bioprobe.prompting.mentions`), placed on the words and turned into the task's tags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bioprobe.prompting.prompts import Question

#: the similarity scale's answers (BIOSSES: 0 unrelated - 4 equivalent)
SCALE = tuple(range(5))
YES, NO = "yes", "no"


class Scheme:
    """A task type's questions and how their answers become its predictions."""

    #: whether the answers are generated (else ranked among `Question.options`)
    generates = False

    def __init__(self, task_type: Any, labels: Sequence[str], verbalizer: Mapping[str, str]):
        self.type, self.labels, self.verbalizer = task_type, list(labels), dict(verbalizer)

    def word(self, label: str) -> str:
        return self.verbalizer.get(label, label)

    def texts(self, record: dict) -> dict[str, str]:
        return dict(zip(self.type.prompt_fields, self.type.texts(record), strict=True))

    def questions(self, record: dict) -> list[Question]:
        raise NotImplementedError

    def prediction(self, record: dict, answers: list) -> Any:
        """The task's prediction for `record` from its questions' answers (per question: the
        options' log-likelihoods, or the generated text)."""
        raise NotImplementedError


class Choice(Scheme):
    def questions(self, record: dict) -> list[Question]:
        options = tuple(self.word(label) for label in self.labels)
        return [Question(self.texts(record), options, self.word(record["label"]))]

    def prediction(self, record: dict, answers: list) -> int:
        (scores,) = answers
        return max(range(len(scores)), key=scores.__getitem__)


class Scale(Scheme):
    def questions(self, record: dict) -> list[Question]:
        gold = min(max(round(float(record["score"])), SCALE[0]), SCALE[-1])
        return [Question(self.texts(record), tuple(map(str, SCALE)), str(gold))]

    def prediction(self, record: dict, answers: list) -> float:
        (scores,) = answers
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        return sum(w * v for w, v in zip(weights, SCALE, strict=True)) / sum(weights)


class PerLabel(Scheme):
    def questions(self, record: dict) -> list[Question]:
        gold = set(record["labels"])
        return [
            Question(
                {**self.texts(record), "label": self.word(label)},
                (YES, NO),
                YES if label in gold else NO,
            )
            for label in self.labels
        ]

    def prediction(self, record: dict, answers: list) -> list[int]:
        return [i for i, (yes, no) in enumerate(answers) if yes > no]


class Mentions(Scheme):
    generates = True

    def __init__(self, task_type: Any, labels: Sequence[str], verbalizer: Mapping[str, str]):
        from bioprobe.tasks.ner import entity_types

        super().__init__(task_type, labels, verbalizer)
        self.entity_types = entity_types(labels)

    def questions(self, record: dict) -> list[Question]:
        return [
            Question(
                {**self.texts(record), "entity": self.word(entity)},
                (),
                "; ".join(gold_mentions(record["tokens"], record["tags"], entity)) or "none",
            )
            for entity in self.entity_types
        ]

    def prediction(self, record: dict, answers: list) -> tuple[list[int], dict[str, int]]:
        """Tag ids per word, and what could not be read: `invalid_generations` (unparsable
        answers) and `unmatched_mentions` (mentions found nowhere in the sentence)."""
        from bioprobe.prompting.mentions import map_mentions, merge, parse_mentions, to_tags

        words = record["tokens"]
        stats = {"invalid_generations": 0, "unmatched_mentions": 0}
        parts = []
        for entity, text in zip(self.entity_types, answers, strict=True):
            mentions = parse_mentions(text, words)
            if mentions is None:
                stats["invalid_generations"] += 1
                mentions = []
            parts.append(map_mentions(words, mentions, entity))
        matches = merge(parts)
        stats["unmatched_mentions"] = matches.unmatched
        index = {label: i for i, label in enumerate(self.labels)}
        tags = to_tags(matches.types, self.scheme_name(), matches.starts)
        return [index.get(tag, index["O"]) for tag in tags], stats

    def scheme_name(self) -> str:
        """The task's tag scheme (bio, type, single, io), from its labels."""
        if any(label.startswith("B-") for label in self.labels):
            return "bio"
        if any(label.startswith("I-") for label in self.labels):
            return "io"
        return "type"


def gold_mentions(tokens: Sequence[str], tags: Sequence[str], entity: str) -> list[str]:
    """The mentions of `entity` in a tagged sentence, as text (its words joined by spaces): a
    mention starts at a ``B-`` tag or where the type begins, and runs while ``I-`` follows."""
    from bioprobe.data.readers import tag_type

    mentions: list[list[str]] = []
    previous = "O"
    for token, tag in zip(tokens, tags, strict=True):
        kind = tag_type(tag)
        if kind == entity and (tag.startswith("B-") or tag_type(previous) != entity):
            mentions.append([token])
        elif kind == entity:
            mentions[-1].append(token)
        previous = tag
    return [" ".join(words) for words in mentions]


SCHEMES = {"choice": Choice, "scale": Scale, "per_label": PerLabel, "mentions": Mentions}


def scheme_for(task_type: Any, labels: Sequence[str], verbalizer: Mapping[str, str]) -> Scheme:
    return SCHEMES[task_type.prompt_scheme](task_type, labels, verbalizer)
