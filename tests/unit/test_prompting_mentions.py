"""Generated mentions read back (`parse_mentions`) and placed on the words (`map_mentions`,
`merge`, `to_tags`), by hand: the answer format, overlaps, repeats, punctuation, case, hyphens
tokenised apart, unmatched mentions, and the tags of every scheme the readers give."""

from __future__ import annotations

import pytest

from bioprobe.data.readers import TAG_SCHEMES
from bioprobe.prompting.mentions import WordMatches, map_mentions, merge, parse_mentions, to_tags


def bio(matches: WordMatches) -> str:
    """The BIO tags of `matches`, space-separated (easier to read in an assertion)."""
    return " ".join(to_tags(matches.types, "bio", matches.starts))


WORDS = ["Mutations", "in", "BRCA1", "cause", "breast", "cancer", "and", "ovarian", "cancer", "."]


def test_parse_separators_bullets_quotes_and_repeats():
    assert parse_mentions("BRCA1; breast cancer", WORDS) == ["BRCA1", "breast cancer"]
    assert parse_mentions("- BRCA1\n* 'breast cancer'\n", WORDS) == ["BRCA1", "breast cancer"]
    assert parse_mentions('1. "BRCA1"\n2) ovarian cancer', WORDS) == ["BRCA1", "ovarian cancer"]
    assert parse_mentions("  “BRCA1” ;; brca1; BRCA1 ", WORDS) == ["BRCA1"]
    # a number that is part of a mention is no bullet
    assert parse_mentions("2.5 mg; 5-FU", ["2.5", "mg", "of", "5-FU"]) == ["2.5 mg", "5-FU"]


@pytest.mark.parametrize("text", ["None", "none.", " NONE. \n", ";", "-\n\n", "- None."])
def test_parse_no_mention(text):
    assert parse_mentions(text, WORDS) == []


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_parse_empty_generation_is_unparsable(text):
    assert parse_mentions(text, WORDS) is None


def test_parse_an_item_longer_than_the_sentence_is_unparsable():
    words = ["BRCA1", "mutations"]
    assert parse_mentions("BRCA1 mutations", words) == ["BRCA1 mutations"]  # as long: kept
    rambling = "BRCA1; the sentence mentions BRCA1 mutations and more"
    assert parse_mentions(rambling, words) is None


def test_map_nested_mentions_the_longer_wins():
    matches = map_mentions(WORDS, ["cancer", "breast cancer"], "Disease")
    assert bio(matches) == "O O O O B-Disease I-Disease O O B-Disease O"
    assert matches.unmatched == 0


def test_map_overlap_of_equal_length_the_earlier_wins():
    assert bio(map_mentions(["a", "b", "c"], ["b c", "a b"], "X")) == "B-X I-X O"


def test_map_every_occurrence_of_a_repeated_mention():
    matches = map_mentions(["cancer", "cells", "and", "cancer"], ["Cancer", "cancer"], "Disease")
    assert bio(matches) == "B-Disease O O B-Disease"
    assert matches.unmatched == 0  # a repeated mention is one mention


def test_map_case_and_whitespace_and_hyphen_tokenisation():
    words = ["the", "BRCA1", "-", "associated", "gene"]
    assert bio(map_mentions(words, ["brca1-ASSOCIATED"], "Gene")) == "O B-Gene I-Gene I-Gene O"
    # and the reverse: words joined by a hyphen, the mention spaced
    joined = map_mentions(["BRCA1-associated", "gene"], ["BRCA1 - associated gene"], "Gene")
    assert bio(joined) == "B-Gene I-Gene"


def test_map_a_match_starts_and_ends_on_word_boundaries():
    matches = map_mentions(["breast", "cancers", "and", "precancer"], ["cancer"], "Disease")
    assert matches.types == [None] * 4
    assert matches.unmatched == 1


def test_map_surrounding_punctuation_is_stripped_when_needed():
    words = ["Huntington", "disease", "(", "HD", ")", "and", "cancer", ",", "again"]
    matches = map_mentions(words, ["(HD)", "cancer,", "Huntington disease."], "Disease")
    # "(HD)" and "cancer," match as written (the brackets and the comma are words here); the
    # period is no word after "disease": it goes
    assert bio(matches) == "B-D I-D B-D I-D I-D O B-D I-D O".replace("-D", "-Disease")
    stripped = map_mentions(["HD", "and", "cancer"], ["(HD)", "cancer,"], "Disease")
    assert bio(stripped) == "B-Disease O B-Disease"
    assert stripped.unmatched == 0


def test_map_counts_the_mentions_found_nowhere():
    matches = map_mentions(WORDS, ["BRCA1", "TP53", "lung cancer", "BRCA2", "", "  "], "Gene")
    assert matches.unmatched == 3  # empty mentions are none
    assert bio(matches) == "O O B-Gene O O O O O O O"


def test_two_adjacent_mentions_of_one_type_are_two_entities():
    matches = map_mentions(["aspirin", "ibuprofen", "tablets"], ["aspirin", "ibuprofen"], "Chem")
    assert matches.starts == [True, True, False]
    assert bio(matches) == "B-Chem B-Chem O"
    # without the starts, a run of one type reads as one mention
    assert to_tags(matches.types, "bio") == ["B-Chem", "I-Chem", "O"]


def test_io_scheme_and_the_readers_other_schemes():
    types = ["PAR", "PAR", None, "INT", "OUT"]
    starts = [True, True, False, True, True]
    assert to_tags(types, "io", starts) == ["I-PAR", "I-PAR", "O", "I-INT", "I-OUT"]
    assert to_tags(types, "type", starts) == ["PAR", "PAR", "O", "INT", "OUT"]
    single = ["B-ENTITY", "B-ENTITY", "O", "B-ENTITY", "B-ENTITY"]
    assert to_tags(types, "single", starts) == single
    # a type change begins a new entity even without a start
    assert to_tags(["A", "B"], "bio") == ["B-A", "B-B"]
    assert set(TAG_SCHEMES) == {"bio", "type", "single", "io"}
    with pytest.raises(ValueError, match="unknown tag scheme 'iob'"):
        to_tags(types, "iob")


def test_merge_types_asked_one_at_a_time():
    words = ["breast", "cancer", "gene", "BRCA1", "and", "cancer"]
    disease = map_mentions(words, ["breast cancer", "cancer", "asthma"], "Disease")
    gene = map_mentions(words, ["breast cancer gene", "BRCA1", "cancer"], "Gene")
    # the longer gene mention wins over the disease inside it; on one span the first type
    both = merge([disease, gene])
    assert bio(both) == "B-Gene I-Gene I-Gene B-Gene O B-Disease"
    assert both.unmatched == 1
    assert merge([WordMatches([None], [False], 2)]) == WordMatches([None], [False], 2)
    with pytest.raises(ValueError, match="different lengths"):
        merge([disease, map_mentions(words[:2], [], "Gene")])
