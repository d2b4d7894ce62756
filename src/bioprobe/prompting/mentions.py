"""NER and PICO by generation: the mentions a model lists, read back and placed on the words.

The answer format, what a template asks for and :func:`parse_mentions` reads:

- the mentions as a list, one item per mention, items separated by ``;`` or line breaks
  (``BRCA1; breast cancer``, or one mention a line);
- an item may start with a bullet (``-``, ``*``, ``•``, ``1.``, ``1)``) and be quoted; bullet,
  quotes and surrounding whitespace are dropped, empty items too, and a repeated item (in any
  case) is kept once;
- ``None`` (any case, with or without a final period), or nothing but separators: no mention.

A generation that is empty (the model generated nothing) or holds an item longer than the
sentence itself (rambling, not a mention) is unparsable: `None`, which the caller counts.

:func:`map_mentions` finds each mention among the sentence's words: exactly but for case and
whitespace (``BRCA1-associated`` matches the words ``BRCA1 - associated`` and the reverse), a
match starting at a word's first character and ending at a word's last; every occurrence is
tagged. A mention found nowhere as written is tried again without its surrounding punctuation
(``cancer,``, ``(HD)``). Where matches overlap, the longer (in words) wins, then the earlier.
:func:`to_tags` turns the result into the task's tags, with a new ``B-`` at each match's first
word, so two adjacent mentions of one type are ``B- B-``, not one entity.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

from bioprobe.data.readers import TAG_SCHEMES, convert_tag

_SEPARATORS = re.compile(r"[;\n]")
_BULLET = re.compile(r"^(?:[-*•]\s*|\d+[.)]\s+)")
_QUOTES = "\"'`“”‘’«»"
_NONE = re.compile(r"none\.?", re.IGNORECASE)


class WordMatches(NamedTuple):
    """Mentions placed on a sentence's words."""

    #: per word, the entity type of the match it is in; None outside every match
    types: list[str | None]
    #: per word, True on the first word of a match (two adjacent matches stay two)
    starts: list[bool]
    #: the mentions found nowhere in the sentence
    unmatched: int


def _key(text: str) -> str:
    """What matching compares: the text without whitespace, case-folded."""
    return "".join(text.split()).casefold()


def _unquoted(item: str) -> str:
    item = item.strip()
    while len(item) >= 2 and item[0] in _QUOTES and item[-1] in _QUOTES:
        item = item[1:-1].strip()
    return item


def parse_mentions(text: str, words: Sequence[str]) -> list[str] | None:
    """The mentions of a generated answer to a question about the sentence `words`, in the
    format of this module's docstring: `[]` for no mention, None when unparsable (an empty
    generation, or an item longer than the sentence)."""
    if not text.strip():
        return None
    limit = len(_key("".join(words)))
    out: list[str] = []
    seen: set[str] = set()
    for raw in _SEPARATORS.split(text):
        item = _unquoted(_BULLET.sub("", raw.strip()))
        if not item or _NONE.fullmatch(item):
            continue
        key = _key(item)
        if len(key) > limit:
            return None
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _strip_punctuation(text: str) -> str:
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start])[0] == "P"):
        start += 1
    while end > start and (
        text[end - 1].isspace() or unicodedata.category(text[end - 1])[0] == "P"
    ):
        end -= 1
    return text[start:end]


def _occurrences(joined: str, key: str, starts: dict, ends: dict) -> list[tuple[int, int]]:
    """Each (first word, last word + 1) where `key` occurs in `joined` on word boundaries."""
    found = []
    at = joined.find(key)
    while at >= 0:
        first, last = starts.get(at), ends.get(at + len(key))
        if first is not None and last is not None:
            found.append((first, last + 1))
        at = joined.find(key, at + 1)  # overlapping occurrences too: each may start a word
    return found


def _place(n_words: int, spans: Sequence[tuple[int, int, str]]) -> tuple[list, list]:
    """Per-word types and match starts of candidate spans (first, end, type), in order of
    preference among equals: longer first, then earlier, then the order given; a span that
    overlaps one already placed is dropped whole."""
    types: list[str | None] = [None] * n_words
    starts = [False] * n_words
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0] - spans[i][1], spans[i][0], i))
    for i in order:
        first, end, entity_type = spans[i]
        if all(t is None for t in types[first:end]):
            types[first:end] = [entity_type] * (end - first)
            starts[first] = True
    return types, starts


def map_mentions(words: Sequence[str], mentions: Sequence[str], entity_type: str) -> WordMatches:
    """Place `mentions` of `entity_type` on the sentence `words` (matching as this module's
    docstring says); a mention repeated in `mentions` (as matching compares) counts once."""
    keys = [_key(w) for w in words]
    word_at: dict[int, int] = {}  # character offset in the joined keys -> the word starting there
    word_ending: dict[int, int] = {}  # offset just past a word's last character -> that word
    offset = 0
    for i, key in enumerate(keys):
        if key:  # a word of whitespace alone can sit inside a match, never start or end one
            word_at[offset] = i
            word_ending[offset + len(key)] = i
        offset += len(key)
    joined = "".join(keys)

    spans: list[tuple[int, int, str]] = []
    unmatched = 0
    seen: set[str] = set()
    for mention in mentions:
        key = _key(mention)
        if not key or key in seen:
            continue
        seen.add(key)
        found = _occurrences(joined, key, word_at, word_ending)
        if not found:
            bare = _key(_strip_punctuation(mention))
            if bare and bare != key:
                found = _occurrences(joined, bare, word_at, word_ending)
        if not found:
            unmatched += 1
        spans.extend((first, end, entity_type) for first, end in found)
    types, starts = _place(len(words), spans)
    return WordMatches(types, starts, unmatched)


def _spans(matches: WordMatches) -> list[tuple[int, int, str]]:
    """The matches of `matches` as (first word, end, type)."""
    spans: list[tuple[int, int, str]] = []
    for i, (entity_type, start) in enumerate(zip(matches.types, matches.starts, strict=True)):
        if entity_type is None:
            continue
        if start or not spans or spans[-1][1] != i or spans[-1][2] != entity_type:
            spans.append((i, i + 1, entity_type))
        else:
            spans[-1] = (spans[-1][0], i + 1, entity_type)
    return spans


def merge(parts: Sequence[WordMatches]) -> WordMatches:
    """One sentence's matches of several entity types (one :func:`map_mentions` per type) as
    one: where matches of different types overlap, the longer wins, then the earlier, then the
    type given first; the unmatched mentions add up."""
    if not parts:
        raise ValueError("merge needs at least one WordMatches")
    n_words = len(parts[0].types)
    if any(len(p.types) != n_words for p in parts):
        raise ValueError("merge: the parts cover sentences of different lengths")
    types, starts = _place(n_words, [span for p in parts for span in _spans(p)])
    return WordMatches(types, starts, sum(p.unmatched for p in parts))


def to_tags(
    types: Sequence[str | None], scheme: str, starts: Sequence[bool] | None = None
) -> list[str]:
    """The tags of words typed `types` (None: outside every mention) under a task's tag scheme
    (`tag_scheme` of its task type: `bio`, `type`, `single` or `io`), as the readers give
    them (`readers.convert_tag`): `bio` B-/I-, with a B- at each match's first word where
    `starts` says (without `starts`, each run of one type is one mention); `type` the bare type;
    `single` B-/I-ENTITY; `io` (PICO) I-type; O outside."""
    if scheme not in TAG_SCHEMES:
        raise ValueError(
            f"unknown tag scheme {scheme!r} (expected one of {', '.join(TAG_SCHEMES)})"
        )
    if starts is not None and len(starts) != len(types):
        raise ValueError(f"to_tags: {len(types)} types but {len(starts)} starts")
    tags: list[str] = []
    previous = None
    for i, entity_type in enumerate(types):
        if entity_type is None:
            tags.append("O")
        elif scheme == "io":
            tags.append(f"I-{entity_type}")
        else:
            begins = entity_type != previous or (starts is not None and starts[i])
            tags.append(convert_tag(f"{'B' if begins else 'I'}-{entity_type}", scheme))
        previous = entity_type
    return tags
