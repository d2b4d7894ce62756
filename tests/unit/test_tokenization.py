"""Tokenizer loading, word alignment, truncation and pair encoding for every family."""

from __future__ import annotations

import json
import shutil

import pytest

from bioprobe.errors import BioprobeError
from bioprobe.tokenization import (
    IGNORE_INDEX,
    WordEncoding,
    _piece_words,
    align_labels,
    encode_pair,
    encode_text,
    encode_words,
    is_byte_level,
    load_tokenizer,
    model_inputs,
    num_special_tokens,
    prepare_tokenizer,
    uses_token_types,
    word_pieces,
    word_start_id,
)

X = IGNORE_INDEX


@pytest.fixture(scope="module")
def tokenizers(
    tiny_bert_dir, tiny_gpt2_dir, tiny_biogpt_dir, tiny_llama_dir, tiny_t5_dir, minilm_dir
):
    return {
        "bert": load_tokenizer(str(tiny_bert_dir)),
        "gpt2": load_tokenizer(str(tiny_gpt2_dir)),
        "biogpt": load_tokenizer(str(tiny_biogpt_dir)),
        "llama": load_tokenizer(str(tiny_llama_dir)),
        "t5": load_tokenizer(str(tiny_t5_dir)),
        "minilm": load_tokenizer(str(minilm_dir)),
    }


def tokens(tok, enc: WordEncoding) -> list[str]:
    return tok.convert_ids_to_tokens(enc.input_ids)


# ---------------------------------------------------------------------------------------------
# hand-made expectations: a 3-word sentence in which exactly one word splits into two pieces

HAND_MADE = {
    "bert": (
        ["The", "patient", "developed"],
        ["[CLS]", "the", "patient", "d", "##eveloped", "[SEP]"],
        [-1, 0, 1, 2, 2, -1],
    ),
    # GPT-2 adds no special tokens; every word carries its leading space (add_prefix_space)
    "gpt2": (
        ["The", "patient", "binds"],
        ["ĠThe", "Ġp", "atient", "Ġbinds"],
        [0, 1, 1, 2],
    ),
    # BioGPT: fairseq puts </s> first; '</w>' ends a word
    "biogpt": (
        ["Aspirin", "reduces", "STAT3"],
        ["</s>", "Aspirin</w>", "re", "duces</w>", "STAT3</w>"],
        [-1, 0, 1, 1, 2],
    ),
    "minilm": (
        ["The", "patient", "inhibits"],
        ["[CLS]", "the", "patient", "inhibit", "##s", "[SEP]"],
        [-1, 0, 1, 2, 2, -1],
    ),
    # LLaMA: <s> first, '▁' opens every word; '(' is not in the vocabulary: a bare '▁' and the
    # byte-fallback token. The bare '▁' is the space before the word: no word, no label
    "llama": (
        ["The", "patient", "("],
        ["<s>", "▁The", "▁p", "atient", "▁", "<0x28>"],
        [-1, 0, 1, 1, -1, 2],
    ),
    # T5: </s> last; no piece '▁A...' or '▁S...': both words open with a bare '▁'
    "t5": (
        ["Aspirin", "reduces", "STAT3"],
        ["▁", "Aspirin", "▁re", "duces", "▁", "STAT3", "</s>"],
        [-1, 0, 1, 1, -1, 2, -1],
    ),
}


@pytest.mark.parametrize("family", sorted(HAND_MADE))
def test_word_index_and_labels_hand_made(tokenizers, family):
    tok = tokenizers[family]
    words, expected_tokens, expected_index = HAND_MADE[family]
    enc = encode_words(tok, words, 64)
    assert tokens(tok, enc) == expected_tokens
    assert enc.word_index == expected_index
    assert (enc.n_words, enc.truncated_words) == (3, 0)
    # labels 5, 6, 7: first piece of each word labelled, the rest ignored
    labels = align_labels(enc.word_index, [5, 6, 7])
    expected_labels = {
        "bert": [X, 5, 6, 7, X, X],
        "gpt2": [5, 6, X, 7],
        "biogpt": [X, 5, 6, X, 7],
        "minilm": [X, 5, 6, 7, X, X],
        "llama": [X, 5, 6, X, X, 7],
        "t5": [X, 5, 6, X, X, 7, X],
    }[family]
    assert labels == expected_labels


def test_align_labels_edge_cases():
    assert align_labels([], []) == []
    assert align_labels([-1, -1], []) == [X, X]
    # labels beyond the kept words (truncation) are ignored
    assert align_labels([-1, 0, 1, 1, -1], [3, 4, 5, 6]) == [X, 3, 4, X, X]
    # a word that follows a special token in the middle (pair-like layouts) still gets labelled
    assert align_labels([0, -1, 0], [2]) == [2, X, X]


@pytest.mark.parametrize("family", ["bert", "gpt2", "minilm"])
def test_fast_path_matches_transformers_word_ids(tokenizers, family):
    tok = tokenizers[family]
    words = ["Interleukin-6", "binds", "the", "HLA-B27", "receptor", "."]
    enc = encode_words(tok, words, 128)
    ref = tok(words, is_split_into_words=True)
    assert enc.input_ids == ref["input_ids"]
    assert enc.word_index == [-1 if w is None else w for w in ref.word_ids()]


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "t5", "minilm"])
@pytest.mark.parametrize("max_length", [4, 7, 10, 128])
def test_word_by_word_path_equals_fast_path(tokenizers, family, max_length):
    tok = tokenizers[family]
    words = ["Tamoxifen", "inhibits", "HLA-B27", "in", "tumour", "cells", "."]
    fast = encode_words(tok, words, max_length, word_by_word=False)
    slow = encode_words(tok, words, max_length, word_by_word=True)
    assert slow == fast
    assert word_pieces(tok, words, word_by_word=True) == word_pieces(tok, words)


@pytest.mark.parametrize("family", ["llama", "t5"])
def test_sentencepiece_alignment_is_word_ids_less_the_bare_word_start(tokenizers, family):
    """transformers' word_ids() give a bare '▁' to the word it opens; bioprobe gives it none
    and is otherwise the same, with the same ids as the tokenizer's own call."""
    tok = tokenizers[family]
    space = word_start_id(tok)
    assert tok.convert_ids_to_tokens(space) == "\u2581"
    words = ["Aspirin", "inhibits", "(", "IL-2", ")", "in", "2019", "."]
    enc = encode_words(tok, words, 128)
    ref = tok(words, is_split_into_words=True)
    assert enc.input_ids == ref["input_ids"]
    expected = [
        -1 if w is None or (tid == space and next_w == w) else w
        for tid, w, next_w in zip(
            ref["input_ids"], ref.word_ids(), [*ref.word_ids()[1:], None], strict=True
        )
    ]
    assert enc.word_index == expected
    bare = [w for i, w in zip(enc.input_ids, enc.word_index, strict=True) if i == space]
    assert bare and set(bare) == {-1}  # '(' and '2019' open with a bare '▁' in both
    assert sorted(set(enc.word_index) - {-1}) == list(range(len(words)))  # every word kept
    # words encoded as in running text: each one opens with '▁', the first one too
    assert enc.input_ids == tok(" ".join(words))["input_ids"]


def test_word_start_is_only_for_sentencepiece_vocabularies(tokenizers):
    assert {f: word_start_id(t) is not None for f, t in tokenizers.items()} == {
        "bert": False,
        "gpt2": False,
        "biogpt": False,
        "llama": True,
        "t5": True,
        "minilm": False,
    }


def test_a_word_of_a_bare_word_start_alone_keeps_it(tokenizers):
    tok = tokenizers["t5"]
    space = word_start_id(tok)
    # a word that gives nothing but '▁' keeps it: every word owns at least one piece
    assert _piece_words([space], 4, space) == [4]
    assert _piece_words([space, space, 9], 4, space) == [-1, -1, 4]
    assert _piece_words([space, 9], 4, None) == [4, 4]


def test_llama_and_t5_pad_tokens(tokenizers):
    llama, t5 = tokenizers["llama"], tokenizers["t5"]
    # LLaMA ships without a pad token: pad = eos, as for every decoder; right padding
    assert (llama.pad_token, llama.pad_token_id) == ("</s>", llama.eos_token_id)
    assert llama.padding_side == "right"
    # T5 has its own: <pad> = 0, </s> = 1, <unk> = 2 (T5Config's pad, eos, decoder start)
    assert (t5.pad_token_id, t5.eos_token_id, t5.unk_token_id) == (0, 1, 2)
    assert t5.padding_side == "right"


def test_biogpt_scratch_tokenizer_is_slow_biogpt(tokenizers, tiny_biogpt_dir):
    from transformers import AutoTokenizer, BioGptTokenizer

    raw = AutoTokenizer.from_pretrained(str(tiny_biogpt_dir))
    assert type(raw) is BioGptTokenizer
    assert raw.is_fast is False
    tok = tokenizers["biogpt"]
    assert (tok.bos_token, tok.eos_token, tok.sep_token, tok.pad_token, tok.unk_token) == (
        "<s>",
        "</s>",
        "</s>",
        "<pad>",
        "<unk>",
    )
    assert [tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    with pytest.raises(BioprobeError, match="slow"):
        word_pieces(tok, ["a"], word_by_word=False)
    # Moses splits 'TNF-alpha' into TNF @-@ alpha: three pieces of one word
    words = ["Interleukin-6", "binds", "TNF-alpha"]
    enc = encode_words(tok, words, 64)
    assert tokens(tok, enc)[0] == "</s>"
    assert enc.word_index[0] == -1
    assert sorted(set(enc.word_index[1:])) == [0, 1, 2]
    # the same ids transformers' own slow pre-split path gives
    assert enc.input_ids == tok(words, is_split_into_words=True)["input_ids"]


def test_word_without_tokens_becomes_unk(tokenizers):
    tok = tokenizers["minilm"]
    enc = encode_words(tok, ["fever", "\x00", "cells"], 64)  # BERT cleaning drops \x00
    assert enc.word_index == [-1, 0, 1, 2, -1]
    assert enc.input_ids[2] == tok.unk_token_id
    assert encode_words(tok, ["fever", "\x00", "cells"], 64, word_by_word=True) == enc


def test_empty_sentence(tokenizers):
    enc = encode_words(tokenizers["bert"], [], 16)
    assert tokens(tokenizers["bert"], enc) == ["[CLS]", "[SEP]"]
    assert (enc.word_index, enc.n_words, enc.truncated_words) == ([-1, -1], 0, 0)


# ---------------------------------------------------------------------------------------------
# truncation at word boundaries


def test_truncation_counted_at_word_boundaries(tokenizers):
    tok = tokenizers["bert"]
    words = ["Aspirin", "reduces", "fever"]  # as ##p ##irin | reduc ##es | f ##ever
    full = encode_words(tok, words, 64)
    assert full.word_index == [-1, 0, 0, 0, 1, 1, 2, 2, -1]
    # 7 = 2 specials + 3 + 2: 'fever' would not fit
    enc = encode_words(tok, words, 7)
    assert enc.word_index == [-1, 0, 0, 0, 1, 1, -1]
    assert (enc.n_words, enc.truncated_words) == (2, 1)
    assert len(enc.input_ids) == 7
    # 6: 'reduces' would be cut after 'reduc': it is dropped whole, and 'fever' with it
    enc = encode_words(tok, words, 6)
    assert tokens(tok, enc) == ["[CLS]", "as", "##p", "##irin", "[SEP]"]
    assert (enc.n_words, enc.truncated_words) == (1, 2)
    assert align_labels(enc.word_index, [1, 2, 3]) == [X, 1, X, X, X]
    with pytest.raises(BioprobeError, match="no room"):
        encode_words(tok, words, 2)


def test_truncation_biogpt_slow_path(tokenizers):
    tok = tokenizers["biogpt"]
    words = ["Aspirin", "reduces", "STAT3"]  # </s> | Aspirin | re duces | STAT3
    enc = encode_words(tok, words, 3)
    assert enc.word_index == [-1, 0]
    assert (enc.n_words, enc.truncated_words) == (1, 2)
    enc = encode_words(tok, words, 4)
    assert enc.word_index == [-1, 0, 1, 1]
    assert (enc.n_words, enc.truncated_words) == (2, 1)


# ---------------------------------------------------------------------------------------------
# GPT-2: pad token and prefix space


def test_gpt2_pad_token_and_prefix_space(tokenizers, tiny_gpt2_dir):
    tok = tokenizers["gpt2"]
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert tok.pad_token_id == tok.eos_token_id
    assert tok.padding_side == "right"
    assert is_byte_level(tok) and tok.add_prefix_space
    # the first word is encoded like any other word: with its leading space
    assert tok("fever")["input_ids"] == tok(" fever")["input_ids"]
    assert tok.convert_ids_to_tokens(tok("cells")["input_ids"])[0].startswith("Ġ")
    # the saved tokenizer itself has the prefix space off, as the real GPT-2
    cfg = json.loads((tiny_gpt2_dir / "tokenizer_config.json").read_text())
    assert cfg["add_prefix_space"] is False


def test_prefix_space_forced_on_generic_fast_backend(tiny_gpt2_dir, tmp_path):
    """A byte-level tokenizer loaded as a plain TokenizersBackend ignores the keyword."""
    from transformers import AutoTokenizer

    copy = tmp_path / "generic"
    shutil.copytree(tiny_gpt2_dir, copy)
    cfg_path = copy / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg))
    raw = AutoTokenizer.from_pretrained(str(copy), add_prefix_space=True)
    assert type(raw).__name__ != "GPT2Tokenizer"
    tok = load_tokenizer(str(copy))
    assert tok("fever")["input_ids"] == tok(" fever")["input_ids"]
    assert tok.pad_token == tok.eos_token


def test_prepare_tokenizer_keeps_existing_pad(tokenizers):
    tok = tokenizers["minilm"]
    assert prepare_tokenizer(tok).pad_token == "[PAD]"
    assert not is_byte_level(tok)


# ---------------------------------------------------------------------------------------------
# texts and pairs


@pytest.mark.parametrize("family", ["bert", "gpt2", "biogpt", "llama", "t5", "minilm"])
def test_encode_text_matches_tokenizer(tokenizers, family):
    tok = tokenizers[family]
    text = "Aspirin reduces fever in patients with arthritis."
    enc = encode_text(tok, text, 128)
    assert enc["input_ids"] == tok(text)["input_ids"]
    assert enc["attention_mask"] == [1] * len(enc["input_ids"])
    assert enc["truncated_tokens"] == 0
    short = encode_text(tok, text, 5)
    assert len(short["input_ids"]) == 5
    assert short["truncated_tokens"] == len(enc["input_ids"]) - 5


def test_pair_encoders_use_their_template(tokenizers):
    tok = tokenizers["minilm"]
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."
    enc = encode_pair(tok, a, b, 128)
    ref = tok(a, b)
    assert enc["input_ids"] == ref["input_ids"]
    assert enc["token_type_ids"] == ref["token_type_ids"]
    assert enc["truncated_tokens"] == 0


@pytest.mark.parametrize("truncation", ["only_second", "longest_first"])
@pytest.mark.parametrize("max_length", [6, 7, 8, 9, 10, 12, 15])
def test_pair_truncation_matches_tokenizers(tokenizers, truncation, max_length):
    tok = tokenizers["minilm"]
    a = "Aspirin reduces fever."  # 6 sub-tokens
    b = "The patient developed severe hepatitis after isoniazid."  # longer
    full = len(tok(a, b)["input_ids"])
    enc = encode_pair(tok, a, b, max_length, truncation=truncation)
    if truncation == "only_second" and max_length <= 3 + 6:
        # tokenizers refuses ("sequence to truncate too short"); bioprobe cuts the first too
        assert len(enc["input_ids"]) == max_length
        assert enc["truncated_tokens"] == full - max_length
        return
    ref = tok(a, b, truncation=truncation, max_length=max_length)
    assert enc["input_ids"] == ref["input_ids"]
    assert enc["token_type_ids"] == ref["token_type_ids"]
    assert enc["truncated_tokens"] == full - len(ref["input_ids"])
    # equal lengths: the tie rule of tokenizers' LongestFirst
    same = encode_pair(tok, b, b, max_length, truncation="longest_first")
    assert (
        same["input_ids"]
        == tok(b, b, truncation="longest_first", max_length=max_length)["input_ids"]
    )


def test_pair_only_second_cuts_first_when_it_alone_is_too_long(tokenizers):
    tok = tokenizers["minilm"]
    # a: as ##pi ##rin reduces fever in patients . (8), b: yes . (2); 7 - 3 specials = 4
    enc = encode_pair(tok, "Aspirin reduces fever in patients.", "Yes.", 7)
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == [
        "[CLS]",
        "as",
        "##pi",
        "##rin",
        "reduces",
        "[SEP]",
        "[SEP]",
    ]
    assert enc["truncated_tokens"] == 6


def test_pair_gpt2_separated_by_eos(tokenizers):
    tok = tokenizers["gpt2"]
    assert tok.sep_token is None
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."
    enc = encode_pair(tok, a, b, 128)
    ids_a = tok(a)["input_ids"]
    ids_b = tok(b)["input_ids"]
    assert enc["input_ids"] == [*ids_a, tok.eos_token_id, *ids_b]
    assert "token_type_ids" not in enc
    assert num_special_tokens(tok) == 0
    cut = encode_pair(tok, a, b, len(ids_a) + 3)
    assert cut["input_ids"] == [*ids_a, tok.eos_token_id, *ids_b[:2]]
    assert cut["truncated_tokens"] == len(ids_b) - 2


def test_pair_biogpt_uses_sep(tokenizers):
    tok = tokenizers["biogpt"]
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."
    enc = encode_pair(tok, a, b, 128)
    assert enc["input_ids"] == tok(a, b)["input_ids"]
    sep = tok.sep_token_id
    assert enc["input_ids"][0] == sep
    assert enc["input_ids"].count(sep) == 2


def test_pair_llama_bos_and_eos_between(tokenizers):
    tok = tokenizers["llama"]
    assert tok.sep_token is None
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."
    enc = encode_pair(tok, a, b, 128)
    ids_a = tok(a, add_special_tokens=False)["input_ids"]
    ids_b = tok(b, add_special_tokens=False)["input_ids"]
    # <s> a </s> b: no final eos, which pad = eos would hide from the sequence head
    assert enc["input_ids"] == [tok.bos_token_id, *ids_a, tok.eos_token_id, *ids_b]
    assert "token_type_ids" not in enc


def test_pair_t5_holds_two_eos(tokenizers):
    """T5's sequence head reads the decoder at the last eos and wants as many eos in every
    example of a batch: a pair holds two, cut or not, a single text one."""
    tok = tokenizers["t5"]
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."
    enc = encode_pair(tok, a, b, 128)
    assert enc["input_ids"] == tok(a, b)["input_ids"]  # T5's own pair template: a </s> b </s>
    eos = tok.eos_token_id
    assert enc["input_ids"].count(eos) == 2 and enc["input_ids"][-1] == eos
    for max_length in (4, 6, 9):
        cut = encode_pair(tok, a, b, max_length)
        assert len(cut["input_ids"]) == max_length and cut["input_ids"].count(eos) == 2
    assert encode_text(tok, a, 5)["input_ids"].count(eos) == 1


def test_longest_first_grid_matches_tokenizers(tokenizers):
    tok = tokenizers["minilm"]
    for la in range(1, 8):
        for lb in range(1, 8):
            a, b = " ".join(["cell"] * la), " ".join(["gene"] * lb)
            for max_length in range(5, la + lb + 5):
                enc = encode_pair(tok, a, b, max_length, truncation="longest_first")
                ref = tok(a, b, truncation="longest_first", max_length=max_length)
                assert enc["input_ids"] == ref["input_ids"], (la, lb, max_length)


# ---------------------------------------------------------------------------------------------
# model inputs: the same for training features, scoring and dumps

TOKEN_TYPES = {
    "bert": True,
    "minilm": True,
    "gpt2": False,
    "biogpt": False,
    "llama": False,
    "t5": False,
}


@pytest.mark.parametrize("family", sorted(TOKEN_TYPES))
def test_model_inputs_carry_token_types_where_the_tokenizer_uses_them(tokenizers, family):
    """Encoders (BERT family) get token types, a pair's second text as segment 1, exactly as
    the tokenizer's own pair call gives them; decoders (GPT-2, BioGPT) none at all."""
    tok = tokenizers[family]
    uses = TOKEN_TYPES[family]
    assert uses_token_types(tok) == uses
    keys = ["input_ids", "attention_mask", *(["token_type_ids"] if uses else [])]
    a, b = "Aspirin reduces fever.", "The patient developed hepatitis."

    pair = model_inputs(encode_pair(tok, a, b, 128))
    assert list(pair) == keys  # no truncated_tokens
    assert pair["attention_mask"] == [1] * len(pair["input_ids"])
    if family not in ("gpt2", "llama"):  # no sep: bioprobe puts an eos between the texts
        assert pair == {k: tok(a, b)[k] for k in keys}
    if uses:
        n_a = len(tok(a)["input_ids"])
        assert pair["token_type_ids"] == [0] * n_a + [1] * (len(pair["input_ids"]) - n_a)

    text = model_inputs(encode_text(tok, a, 128))
    assert text == {k: tok(a)[k] for k in keys}

    enc = encode_words(tok, a.split(), 128)
    words = model_inputs(enc)
    assert list(words) == keys
    assert words["input_ids"] == enc.input_ids
    assert words["attention_mask"] == [1] * len(enc.input_ids)
    assert enc.token_type_ids == (words.get("token_type_ids"))
    if uses:  # one segment
        assert words["token_type_ids"] == [0] * len(enc.input_ids)


def test_model_inputs_refuse_a_broken_encoding():
    with pytest.raises(BioprobeError, match="differ in length"):
        model_inputs({"input_ids": [1, 2], "attention_mask": [1]})
    with pytest.raises(BioprobeError, match="without input ids"):
        model_inputs({"input_ids": [1, 2]})
