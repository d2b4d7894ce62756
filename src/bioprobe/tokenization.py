"""Tokenizer loading and word-aligned encoding for encoders and decoders, fast and slow tokenizers.

Two kinds of tokenizers reach this module:

* fast ones (``TokenizersBackend`` in transformers v5: BERT, GPT-2, ...) expose ``word_ids()``;
* slow ones (``PythonBackend``: BioGPT's Moses + fastBPE tokenizer) do not.

Both are handled by one pipeline: the words of a sentence are turned into one list of sub-token
ids per word (fast: one ``is_split_into_words=True`` call grouped by ``word_ids()``; slow: word
by word), the sentence is truncated at a word boundary, and the tokenizer's own special tokens
are put around what is left. A tokenizer that has both paths gives the same ids on both.

SentencePiece-style tokenizers (LLaMA-2, Mistral, T5) start every word with ``▁``; where no piece
begins with ``▁`` and the word's first characters, the ``▁`` stands alone, a piece of its own. That
bare ``▁`` is the space before the word, as whitespace is to BERT: word alignment gives it no word
(:func:`encode_words`), so a word's label and its pooled vector sit on the pieces that hold its
characters. A left-to-right decoder's state at the bare ``▁`` has seen nothing of the word.

Special tokens come from the tokenizer itself: slow tokenizers through
``build_inputs_with_special_tokens``; fast ones through their backend post-processor (v5 fast
tokenizers have no ``build_inputs_with_special_tokens``), read once as a template.

What the model gets for an encoded example is :func:`model_inputs` of it, in every stage:
the features that fine-tuning and scoring collate and the batches the dumps feed the model
(``analysis.extract.pad``). Token types are part of it where the tokenizer lists them in
``model_input_names`` (:func:`uses_token_types`: the BERT family, pretrained with segment ids,
the second text of a pair as segment 1), and absent for models without them (GPT-2, BioGPT,
RoBERTa), which then see segment 0 everywhere as they were pretrained.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bioprobe.errors import BioprobeError

IGNORE_INDEX = -100
"""Label of sub-tokens that carry no loss (continuations, special tokens, padding)."""

Truncation = Literal["only_second", "longest_first"]

WORD_START = "\u2581"
"""SentencePiece's word-start mark ``▁`` (LLaMA-2, Mistral, T5 vocabularies)."""

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The keys of :func:`model_inputs`: what the model is fed for an example (token types only
where :func:`uses_token_types`)."""


# --------------------------------------------------------------------------------------------
# loading


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make a tokenizer usable for batched classification, in place; returns it.

    GPT-2-style tokenizers ship without a pad token (the paper never set one and so trained
    with batch size 1): they get ``pad_token = eos_token``. Padding goes on the right.

    The model's ``config.pad_token_id`` must match ``tokenizer.pad_token_id``: a decoder's
    sequence-classification head pools the last token that is not padding, found through
    ``config.pad_token_id``. :func:`bioprobe.models.load_model_for_task` sets it.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise BioprobeError(
                f"tokenizer {type(tokenizer).__name__} has neither a pad nor an eos token; "
                "cannot pad batches"
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def _byte_level_parts(pre_tokenizer: Any) -> list[Any]:
    """The ByteLevel pre-tokenizers inside `pre_tokenizer` (itself, or items of a Sequence)."""
    from tokenizers import pre_tokenizers

    if pre_tokenizer is None:
        return []
    if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel):
        return [pre_tokenizer]
    if isinstance(pre_tokenizer, pre_tokenizers.Sequence):
        parts = []
        i = 0
        while True:
            try:
                item = pre_tokenizer[i]
            except IndexError:
                break
            parts.extend(_byte_level_parts(item))
            i += 1
        return parts
    return []


def is_byte_level(tokenizer: Any) -> bool:
    """Whether `tokenizer` is a byte-level BPE (GPT-2 family): spaces are part of the tokens."""
    if not getattr(tokenizer, "is_fast", False):
        return False
    return bool(_byte_level_parts(tokenizer.backend_tokenizer.pre_tokenizer))


def _force_prefix_space(tokenizer: Any) -> None:
    """Make every ByteLevel pre-tokenizer add a prefix space (the backend object is shared)."""
    for part in _byte_level_parts(tokenizer.backend_tokenizer.pre_tokenizer):
        part.add_prefix_space = True
    tokenizer.add_prefix_space = True


def load_tokenizer(
    name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> Any:
    """Load a tokenizer with ``AutoTokenizer``, ready for word-split input and batching.

    Byte-level BPE tokenizers (GPT-2 family) are loaded with ``add_prefix_space=True`` so that
    every word of a pre-split sentence is encoded like a word inside running text (with its
    leading space), the first one included. In transformers v5 the keyword only reaches the
    backend for classes that rebuild it in ``__init__`` (``GPT2Tokenizer`` does, a generic
    ``TokenizersBackend`` loaded from ``tokenizer.json`` does not), so the ByteLevel
    pre-tokenizer is also switched on directly. Then :func:`prepare_tokenizer`.
    """
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kwargs["revision"] = revision
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if is_byte_level(tokenizer):
        parts = _byte_level_parts(tokenizer.backend_tokenizer.pre_tokenizer)
        if not all(p.add_prefix_space for p in parts):
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, add_prefix_space=True, **kwargs)
        _force_prefix_space(tokenizer)
    return prepare_tokenizer(tokenizer)


# --------------------------------------------------------------------------------------------
# special tokens


@dataclass(frozen=True)
class _Assembled:
    input_ids: list[int]
    type_ids: list[int]
    #: per position: -1 special token, 0 first segment, 1 second segment
    segment: list[int]


def _probe_encoding(tokenizer: Any) -> Any:
    """A one-token backend Encoding (any special token encodes to exactly one token)."""
    candidates = [
        getattr(tokenizer, name, None)
        for name in ("unk_token", "pad_token", "eos_token", "bos_token", "sep_token", "cls_token")
    ]
    for text in [*(c for c in candidates if c), "a", "0"]:
        # the wrapper call also resets the backend's stored truncation/padding
        enc = tokenizer(str(text), add_special_tokens=False).encodings[0]
        if len(enc.ids) == 1:
            return enc
    raise BioprobeError(f"cannot read the special-token template of {type(tokenizer).__name__}")


_TEMPLATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fast_template(tokenizer: Any, pair: bool) -> list[tuple[str, int, int]]:
    """The fast tokenizer's special-token layout: ("special", id, type) / ("A"|"B", 0, type).

    Cached per tokenizer object (outside it: tokenizers get pickled and hashed by `datasets`).
    """
    cache = _TEMPLATES.setdefault(tokenizer, {})
    processor = tokenizer.backend_tokenizer.post_processor
    key = (pair, repr(processor))
    if key in cache:
        return cache[key]
    if processor is None:
        template = [("A", 0, 0)] + ([("B", 0, 1)] if pair else [])
    else:
        # (sequence_ids are unreliable here: the first segment reads None inside a pair)
        probe = _probe_encoding(tokenizer)
        out = processor.process(probe, _probe_encoding(tokenizer) if pair else None, True)
        template = []
        n_content = 0
        for tid, type_id, special in zip(
            out.ids, out.type_ids, out.special_tokens_mask, strict=True
        ):
            if special:
                template.append(("special", tid, type_id))
            else:
                template.append(("AB"[min(n_content, 1)], 0, type_id))
                n_content += 1
        if [t[0] for t in template if t[0] != "special"] != (["A", "B"] if pair else ["A"]):
            raise BioprobeError(
                f"unexpected special-token template for {type(tokenizer).__name__}: {out.tokens}"
            )
    cache[key] = template
    return template


def _add_special_tokens(tokenizer: Any, ids_a: list[int], ids_b: list[int] | None) -> _Assembled:
    """Wrap one or two segments (ids without special tokens) in the tokenizer's special tokens."""
    if tokenizer.is_fast:
        ids: list[int] = []
        types: list[int] = []
        segment: list[int] = []
        for kind, tid, type_id in _fast_template(tokenizer, ids_b is not None):
            if kind == "special":
                chunk, seg = [tid], -1
            else:
                chunk, seg = (ids_a, 0) if kind == "A" else (ids_b or [], 1)
            ids.extend(chunk)
            types.extend([type_id] * len(chunk))
            segment.extend([seg] * len(chunk))
        return _Assembled(ids, types, segment)
    ids = list(tokenizer.build_inputs_with_special_tokens(ids_a, ids_b))
    special = tokenizer.get_special_tokens_mask(ids_a, ids_b)
    if len(special) != len(ids) or len(ids) - sum(special) != len(ids_a) + len(ids_b or []):
        raise BioprobeError(
            f"{type(tokenizer).__name__}: special-token mask does not match its inputs"
        )
    try:
        types = list(tokenizer.create_token_type_ids_from_sequences(ids_a, ids_b))
    except (AttributeError, NotImplementedError):
        types = [0] * len(ids)
    if len(types) != len(ids):
        types = [0] * len(ids)
    segment = []
    seen = 0
    for is_special in special:
        if is_special:
            segment.append(-1)
        else:
            segment.append(0 if seen < len(ids_a) else 1)
            seen += 1
    return _Assembled(ids, types, segment)


def num_special_tokens(tokenizer: Any, pair: bool = False) -> int:
    """How many special tokens the tokenizer puts around one segment (or a pair)."""
    return len(_add_special_tokens(tokenizer, [], [] if pair else None).input_ids)


# --------------------------------------------------------------------------------------------
# words (NER)


@dataclass
class WordEncoding:
    """One pre-split sentence, encoded."""

    input_ids: list[int]
    #: per sub-token, the index of its word; -1 on special tokens and on a bare ``▁`` piece
    #: that opens a word (SentencePiece: the space before it, see :func:`encode_words`)
    word_index: list[int]
    #: words kept (always a prefix of the sentence)
    n_words: int
    #: words dropped at the end because the sentence did not fit into max_length
    truncated_words: int
    #: per sub-token, its segment (all 0: one segment) where the tokenizer uses token types
    #: (:func:`uses_token_types`), else None
    token_type_ids: list[int] | None = None

    @property
    def attention_mask(self) -> list[int]:
        return [1] * len(self.input_ids)


def word_start_id(tokenizer: Any) -> int | None:
    """The id of the bare word-start piece ``▁`` where the vocabulary has one (SentencePiece
    tokenizers: LLaMA-2, Mistral, T5), else None (WordPiece, byte-level BPE, fastBPE)."""
    try:
        tid = tokenizer.convert_tokens_to_ids(WORD_START)
    except (KeyError, ValueError, TypeError):
        return None
    if not isinstance(tid, int) or tid == tokenizer.unk_token_id:
        return None
    return tid


def _piece_words(piece: Sequence[int], word: int, space: int | None) -> list[int]:
    """The word index of each sub-token of word `word`: -1 on bare ``▁`` pieces (`space`) that
    open it while pieces with characters follow (a word of nothing but ``▁`` keeps them)."""
    lead = 0
    if space is not None:
        while lead < len(piece) - 1 and piece[lead] == space:
            lead += 1
    return [-1] * lead + [word] * (len(piece) - lead)


def _unk_piece(tokenizer: Any) -> list[int]:
    if tokenizer.unk_token_id is not None:
        return [tokenizer.unk_token_id]
    raise BioprobeError(f"{type(tokenizer).__name__}: a word gives no token and there is no unk")


def word_pieces(tokenizer: Any, words: Sequence[str], *, word_by_word: bool | None = None):
    """Sub-token ids of each word, no special tokens: a list of lists, one per word.

    Fast tokenizers: one ``is_split_into_words=True`` call grouped by ``word_ids()``. Slow
    tokenizers (or ``word_by_word=True``): each word tokenized on its own, which for a
    byte-level BPE loaded by :func:`load_tokenizer` includes the leading space that the fast
    path gives every word. A word that yields no token at all (e.g. a lone control character)
    becomes the unknown token, so that every word keeps a position and its label.
    """
    words = [str(w) for w in words]
    if word_by_word is None:
        word_by_word = not tokenizer.is_fast
    if not word_by_word and not tokenizer.is_fast:
        raise BioprobeError(f"{type(tokenizer).__name__} is slow: it has no word_ids()")
    if not words:
        return []
    if word_by_word:
        pieces = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    else:
        enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        pieces = [[] for _ in words]
        for tid, wid in zip(enc["input_ids"], enc.word_ids(), strict=True):
            if wid is not None:
                pieces[wid].append(tid)
    return [list(p) if p else _unk_piece(tokenizer) for p in pieces]


def encode_words(
    tokenizer: Any,
    words: Sequence[str],
    max_length: int,
    *,
    word_by_word: bool | None = None,
) -> WordEncoding:
    """Encode a pre-split sentence; truncate at a word boundary so no word is cut in half.

    `max_length` counts special tokens. Words that do not fit are dropped from the end and
    counted in ``truncated_words`` (a single word longer than the whole budget drops itself and
    everything after it). ``word_by_word`` forces (True) or forbids (False) the slow path;
    by default only slow tokenizers use it.

    A bare ``▁`` piece that opens a word (SentencePiece tokenizers) is kept in the input but
    belongs to no word (``word_index`` -1): labels go to the word's first piece with
    characters, and word vectors are pooled over the pieces that hold its characters.
    """
    budget = max_length - num_special_tokens(tokenizer)
    if budget < 1:
        raise BioprobeError(f"max_length {max_length} leaves no room beside the special tokens")
    pieces = word_pieces(tokenizer, words, word_by_word=word_by_word)
    space = word_start_id(tokenizer)
    kept_ids: list[int] = []
    kept_words: list[int] = []
    n_words = 0
    for i, piece in enumerate(pieces):
        if len(kept_ids) + len(piece) > budget:
            break
        kept_ids.extend(piece)
        kept_words.extend(_piece_words(piece, i, space))
        n_words += 1
    assembled = _add_special_tokens(tokenizer, kept_ids, None)
    word_index = []
    content = iter(kept_words)
    for seg in assembled.segment:
        word_index.append(-1 if seg < 0 else next(content))
    return WordEncoding(
        input_ids=assembled.input_ids,
        word_index=word_index,
        n_words=n_words,
        truncated_words=len(pieces) - n_words,
        token_type_ids=assembled.type_ids if uses_token_types(tokenizer) else None,
    )


def align_labels(word_index: Sequence[int], word_labels: Sequence[int]) -> list[int]:
    """Label the first sub-token of each word; -100 on continuations and special tokens.

    `word_labels` may be longer than the words kept (truncation): the extra labels are unused.
    """
    out = []
    previous = -1
    for w in word_index:
        if w < 0:
            out.append(IGNORE_INDEX)
        elif w != previous:
            out.append(int(word_labels[w]))
        else:
            out.append(IGNORE_INDEX)
        if w >= 0:
            previous = w
    return out


# --------------------------------------------------------------------------------------------
# texts and pairs


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _result(tokenizer: Any, assembled: _Assembled, truncated: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_ids": assembled.input_ids,
        "attention_mask": [1] * len(assembled.input_ids),
    }
    if uses_token_types(tokenizer):
        out["token_type_ids"] = assembled.type_ids
    out["truncated_tokens"] = truncated
    return out


def encode_text(tokenizer: Any, text: str, max_length: int) -> dict[str, Any]:
    """Encode one segment with special tokens, truncated on the right to `max_length`.

    Returns ``input_ids``, ``attention_mask`` (``token_type_ids`` where the tokenizer uses
    them) and ``truncated_tokens``, the number of sub-tokens dropped.
    """
    budget = max_length - num_special_tokens(tokenizer)
    if budget < 1:
        raise BioprobeError(f"max_length {max_length} leaves no room beside the special tokens")
    ids = _text_ids(tokenizer, text)
    return _result(
        tokenizer, _add_special_tokens(tokenizer, ids[:budget], None), max(0, len(ids) - budget)
    )


def _truncate_pair(la: int, lb: int, budget: int, truncation: Truncation) -> tuple[int, int]:
    """Kept lengths of the two segments (the `tokenizers` library's rules)."""
    if la + lb <= budget:
        return la, lb
    if truncation == "only_second":
        if la <= budget:
            return la, budget - la
        # the first segment alone is too long: cut it too rather than fail the whole job
        return budget, 0
    if truncation == "longest_first":
        # as tokenizers' LongestFirst: the shorter keeps at most half (rounded down), the
        # longer takes the rest; on a tie the second counts as the longer
        swap = la <= lb
        n1, n2 = (lb, la) if swap else (la, lb)
        n2 = min(n2, budget // 2)
        n1 = budget - n2
        return (n2, n1) if swap else (n1, n2)
    raise ValueError(f"unknown truncation {truncation!r}")


def encode_pair(
    tokenizer: Any,
    text_a: str,
    text_b: str,
    max_length: int,
    truncation: Truncation = "only_second",
) -> dict[str, Any]:
    """Encode a sentence pair as one sequence, truncated to `max_length` tokens.

    Encoders use their own pair template (``[CLS] a [SEP] b [SEP]``, with token types).
    Tokenizers without a sep token (GPT-2) would otherwise run the two texts together; they get
    ``a <eos> b`` inside their single-segment template. No eos is appended at the end: with
    ``pad = eos`` a final eos would look like padding to the last-non-pad pooling of the
    sequence head. BioGPT has sep = ``</s>`` and gives ``</s> a </s> b``; LLaMA-2 / Mistral
    ``<s> a </s> b``. T5 (no sep; its template appends ``</s>``, and pads with ``<pad>``) gives
    ``a </s> b </s>``: every pair holds two eos, as T5's sequence head, which reads the
    decoder at the last eos, requires of a batch (single texts hold one).

    ``truncation``: ``only_second`` cuts the second text (the first too if it alone is too
    long), ``longest_first`` the longer one, as the ``tokenizers`` library does. Returns
    ``input_ids``, ``attention_mask`` (``token_type_ids`` where used) and
    ``truncated_tokens``, the number of sub-tokens dropped.
    """
    ids_a = _text_ids(tokenizer, text_a)
    ids_b = _text_ids(tokenizer, text_b)
    joined = tokenizer.sep_token is None
    if joined:
        if tokenizer.eos_token_id is None:
            raise BioprobeError(
                f"{type(tokenizer).__name__} has neither a sep nor an eos token to separate a pair"
            )
        budget = max_length - num_special_tokens(tokenizer) - 1
    else:
        budget = max_length - num_special_tokens(tokenizer, pair=True)
    if budget < 1:
        raise BioprobeError(f"max_length {max_length} leaves no room beside the special tokens")
    na, nb = _truncate_pair(len(ids_a), len(ids_b), budget, truncation)
    dropped = len(ids_a) + len(ids_b) - na - nb
    if joined:
        assembled = _add_special_tokens(
            tokenizer, [*ids_a[:na], tokenizer.eos_token_id, *ids_b[:nb]], None
        )
    else:
        assembled = _add_special_tokens(tokenizer, ids_a[:na], ids_b[:nb])
    return _result(tokenizer, assembled, dropped)


# --------------------------------------------------------------------------------------------
# model inputs


def uses_token_types(tokenizer: Any) -> bool:
    """Whether the model takes token types: its tokenizer lists ``token_type_ids`` among its
    ``model_input_names`` (BERT and its relatives, whose ``config.type_vocab_size`` is 2).
    Decoders (GPT-2, BioGPT) do not: GPT-2 would look segment ids up in its word embeddings."""
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def model_inputs(encoding: Mapping[str, Any] | WordEncoding) -> dict[str, list[int]]:
    """What the model gets for one encoded example, in every stage (fine-tuning and scoring
    features, dump batches): ``input_ids``, ``attention_mask`` and, where the encoding has them
    (:func:`uses_token_types`), ``token_type_ids``; nothing else (no ``truncated_tokens``,
    ``word_index``). `encoding`: an :func:`encode_pair` or :func:`encode_text` dict, or a
    :class:`WordEncoding`."""
    if isinstance(encoding, Mapping):
        values = {key: encoding.get(key) for key in MODEL_INPUTS}
    else:
        values = {key: getattr(encoding, key, None) for key in MODEL_INPUTS}
    out = {key: list(v) for key, v in values.items() if v is not None}
    if "input_ids" not in out or "attention_mask" not in out:
        raise BioprobeError(f"an encoding without input ids or attention mask: {sorted(out)}")
    lengths = {len(v) for v in out.values()}
    if len(lengths) != 1:
        raise BioprobeError(f"an encoding's inputs differ in length: {lengths}")
    return out
