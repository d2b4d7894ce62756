"""Control tasks (Hewitt & Liang 2019): one seeded label per word type; shuffled pair labels."""

from __future__ import annotations

import numpy as np
import pytest

from bioprobe.probing import (
    control_label_map,
    control_labels_ner,
    control_labels_ner_pair,
    control_labels_pairs,
    label_distribution,
)


def corpus(seed, n_tokens, n_types=300, p=(0.7, 0.2, 0.1)):
    rng = np.random.default_rng(seed)
    types = [f"w{i}" for i in rng.zipf(1.5, n_tokens) % n_types]
    labels = rng.choice(len(p), size=n_tokens, p=p)
    return types, labels


def test_one_control_label_per_word_type():
    types, labels = corpus(0, 3000)
    ctrl = control_labels_ner(types, labels, seed=1)
    seen: dict[str, int] = {}
    for t, c in zip(types, ctrl, strict=True):
        assert seen.setdefault(t, c) == c
    assert ctrl.dtype == np.int64 and set(np.unique(ctrl)) <= {0, 1, 2}


def test_fit_and_eval_sets_share_the_mapping():
    fit_types, fit_labels = corpus(0, 2000)
    eval_types, eval_labels = corpus(1, 1000)
    eval_types = [*eval_types[:-2], "only-in-eval", "only-in-eval"]
    c_fit, c_eval = control_labels_ner_pair(fit_types, fit_labels, eval_types, eval_labels, seed=3)
    assert len(c_fit) == len(fit_types) and len(c_eval) == len(eval_types)
    fit_map = dict(zip(fit_types, c_fit.tolist(), strict=True))
    eval_map = dict(zip(eval_types, c_eval.tolist(), strict=True))
    shared = set(fit_map) & set(eval_map)
    assert len(shared) > 50
    assert all(fit_map[t] == eval_map[t] for t in shared)
    assert c_eval[-1] == c_eval[-2]


def test_deterministic_per_seed_and_independent_of_the_rest_of_the_vocabulary():
    types, labels = corpus(0, 3000)
    a = control_labels_ner(types, labels, seed=7)
    assert np.array_equal(a, control_labels_ner(types, labels, seed=7))
    assert not np.array_equal(a, control_labels_ner(types, labels, seed=8))
    dist = label_distribution(labels)
    full = control_label_map(types, dist, seed=7)
    part = control_label_map(types[:100], dist, seed=7)
    assert all(full[t] == c for t, c in part.items())


def test_control_labels_follow_the_label_distribution():
    # H&L draw each TYPE's label from the empirical label distribution, so the share of types
    # per control label estimates it: 20,000 types give SD <= sqrt(.25/20000) = 0.0035 per
    # share; 0.015 is > 4 SD.
    p = np.array([0.6, 0.3, 0.1])
    types = [f"t{i}" for i in range(20000)]
    labels = np.repeat(np.arange(3), (p * len(types)).astype(int))
    assert np.allclose(label_distribution(labels), p)
    ctrl = control_labels_ner(types, labels, seed=0)
    share = np.bincount(ctrl, minlength=3) / len(ctrl)
    assert np.abs(share - p).max() < 0.015
    # a label that never occurs is never drawn
    ctrl = control_labels_ner(types[:500], np.zeros(500, dtype=int), seed=0, n_labels=3)
    assert set(ctrl.tolist()) == {0}


def test_control_labels_ner_rejects_bad_input():
    with pytest.raises(ValueError, match="word types"):
        control_labels_ner(["a", "b"], np.array([0]), seed=0)
    with pytest.raises(ValueError, match="n_labels"):
        label_distribution(np.array([0, 5]), n_labels=3)
    with pytest.raises(ValueError, match="sum to 1"):
        control_label_map(["a"], np.array([0.5, 0.2]), seed=0)


def test_control_labels_pairs_is_a_seeded_shuffle():
    labels = np.arange(200) % 3
    a = control_labels_pairs(labels, seed=0)
    assert np.array_equal(np.sort(a), np.sort(labels))
    assert np.array_equal(a, control_labels_pairs(labels, seed=0))
    assert not np.array_equal(a, control_labels_pairs(labels, seed=1))
    assert np.mean(a == labels) < 0.6  # shuffled, not the identity
