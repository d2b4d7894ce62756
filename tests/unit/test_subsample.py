"""Subsets: one seeded permutation, nested prefixes, every prefix stratified."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest

from bioprobe.data import read_subset, subset_order, take, write_subsets
from bioprobe.data.subsample import stratum, subset_size
from bioprobe.errors import ConfigError, InputError

SIZES = [0, 1, 10, 30, 50, 100]


def pair_records(counts: dict[str, int], shuffle_seed: int = 0) -> list[dict]:
    labels = [label for label, n in counts.items() for _ in range(n)]
    random.Random(shuffle_seed).shuffle(labels)
    return [
        {"id": str(i), "text_a": "a", "text_b": "b", "label": lab} for i, lab in enumerate(labels)
    ]


def ner_records(n: int, seed: int = 0) -> list[dict]:
    """Sentences with no entity, one type, or both (with B-/I- tags)."""
    rng = random.Random(seed)
    choices = [["O", "O"], ["B-Disease", "I-Disease"], ["B-Chemical", "O"],
               ["B-Chemical", "B-Disease"], ["O", "I-Gene"]]  # fmt: skip
    weights = [50, 25, 15, 8, 2]
    return [
        {"id": str(i), "tokens": ["w", "w"], "tags": rng.choices(choices, weights)[0]}
        for i in range(n)
    ]


DATASETS = {
    "pairs-imbalanced": ("pair", pair_records({"yes": 249, "no": 152, "maybe": 49})),
    "pairs-balanced": ("pair", pair_records({"e": 134, "c": 133, "n": 133}, 1)),
    "ner": ("ner", ner_records(537)),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_order_is_a_permutation_and_every_prefix_is_stratified(name, seed):
    task_type, records = DATASETS[name]
    order = subset_order(records, task_type, seed)
    assert sorted(order) == list(range(len(records)))
    strata = [stratum(r, task_type) for r in records]
    totals = Counter(strata)
    n = len(records)
    counts: Counter = Counter()
    for length, index in enumerate(order, start=1):
        counts[strata[index]] += 1
        for key, total in totals.items():
            assert abs(counts[key] - length * total / n) < 2, (length, key)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_subsets_are_nested_and_sized(name):
    task_type, records = DATASETS[name]
    order = subset_order(records, task_type, 3)
    subsets = [set(take(order, p)) for p in SIZES]
    for smaller, larger in itertools.pairwise(subsets):
        assert smaller <= larger
    assert [len(s) for s in subsets] == [subset_size(len(records), p) for p in SIZES]
    assert subsets[0] == set() and subsets[-1] == set(range(len(records)))


def test_seeds_differ_and_repeat():
    task_type, records = DATASETS["ner"]
    assert subset_order(records, task_type, 1) == subset_order(records, task_type, 1)
    assert subset_order(records, task_type, 1) != subset_order(records, task_type, 2)


def test_small_percent_of_a_tiny_set_still_takes_one():
    assert take([4, 2, 0, 1, 3], 1) == [4]
    assert take([], 50) == []


@pytest.mark.parametrize(
    ("n", "percent", "size"),
    [(10, 5, 1), (30, 5, 2), (10, 15, 2), (10, 25, 3), (7, 50, 4), (200, 33, 66), (5, 100, 5)],
)
def test_sizes_round_half_up(n, percent, size):
    assert subset_size(n, percent) == size


@pytest.mark.parametrize("percent", [-1, 101, 10.0, "10", True, None])
def test_percent_must_be_an_int_in_range(percent):
    with pytest.raises(ConfigError, match="sizes"):
        take(list(range(10)), percent)


def test_ner_stratum_is_the_set_of_entity_types():
    assert stratum({"tags": ["O", "O"]}, "ner") == ()
    assert stratum({"tags": ["B-Gene", "I-Gene", "O", "B-Cell"]}, "ner") == ("Cell", "Gene")
    assert stratum({"tags": ["Gene", "O"]}, "ner") == ("Gene",)  # label_scheme type
    assert stratum({"label": "yes"}, "pair") == ("yes",)
    with pytest.raises(ValueError, match="task type"):
        stratum({"label": "yes"}, "qa")


def test_write_and_read_subsets(tmp_path):
    task_type, records = DATASETS["pairs-imbalanced"]
    a, b = tmp_path / "a" / "seed1.json", tmp_path / "b" / "seed1.json"
    written = write_subsets(records, task_type, 1, a)
    write_subsets(records, task_type, 1, b)
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text()) == written
    assert written["seed"] == 1 and written["n_train"] == len(records)
    assert read_subset(a, 30) == take(written["order"], 30)
    assert read_subset(a, 100) == written["order"]


def test_read_subset_errors(tmp_path):
    with pytest.raises(InputError, match="subset file is missing"):
        read_subset(tmp_path / "absent.json", 10)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"seed": 1, "n_train": 3, "order": [0, 0, 2]}))
    with pytest.raises(InputError, match="not a permutation"):
        read_subset(bad, 10)
    with pytest.raises(ConfigError):
        read_subset(bad, 150)
