"""Bootstrap confidence intervals of downstream scores (bioprobe.bootstrap): the count form of
every task type's scores against rescoring the drawn examples with the task's own metrics
(seqeval, scikit-learn, scipy), the interval against a plain loop over the same draws, and the
coverage of a known mean."""

from __future__ import annotations

import numpy as np
import pytest

from bioprobe import tasks
from bioprobe.bootstrap import confidence_intervals, draw_counts
from bioprobe.settings import BootstrapSettings

# the last label of each set is never gold, so the scores' choice of classes (those in gold,
# those in gold or predicted, all) matters; the multilabel one is never used at all
NER_LABELS = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical", "B-Gene"]
TYPE_LABELS = ["O", "Disease", "Chemical", "Gene"]  # label_scheme: type
PICO_LABELS = ["O", "I-INT", "I-OUT", "I-PAR", "I-XYZ"]
CLASSES = ["negative", "a", "b", "c"]  # relation: the negative class is id 0
MULTI = ["x", "y", "z", "w", "v"]


def _tag_rows(rng, labels, n):
    """Sentences of random tags, predictions right about 70 % of the time (B-/I- mistakes,
    orphan I- tags and all)."""
    rows = []
    for i in range(n):
        gold = list(rng.choice(labels[:-1], size=rng.integers(1, 12), p=_peaked(len(labels) - 1)))
        pred = [g if rng.random() < 0.7 else str(rng.choice(labels[:-1])) for g in gold]
        if rng.random() < 0.1:  # the type only ever predicted
            pred[0] = labels[-1]
        rows.append({"id": str(i), "gold": gold, "predicted": pred})
    return rows


def _peaked(k):
    p = np.ones(k)
    p[0] = 2 * k  # mostly O
    return p / p.sum()


def _class_rows(rng, n):
    gold = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, 3, n))
    pred[rng.random(n) < 0.05] = 3  # the class only ever predicted
    return [
        {"id": str(i), "gold": CLASSES[g], "predicted": CLASSES[p]}
        for i, (g, p) in enumerate(zip(gold, pred, strict=True))
    ]


def _score_rows(rng, n):
    gold = rng.integers(0, 5, n).astype(float)  # ties, as BIOSSES' scores have
    return [
        {"id": str(i), "gold": float(g), "predicted": float(g + rng.normal())}
        for i, g in enumerate(gold)
    ]


def _multilabel_rows(rng, n):
    """Sentences `d<doc>_s<k>`, 1-4 per document."""
    rows, doc = [], 0
    while len(rows) < n:
        for k in range(rng.integers(1, 5)):
            gold = [label for label in MULTI[:-1] if rng.random() < 0.3]
            pred = [label for label in MULTI[:-1] if (label in gold) == (rng.random() < 0.8)]
            rows.append(
                {"id": f"d{doc}_s{k}", "document": f"d{doc}", "gold": gold, "predicted": pred}
            )
        doc += 1
    return rows


CASES = {  # task type -> (labels, rows)
    "ner": (NER_LABELS, lambda rng: _tag_rows(rng, NER_LABELS, 80)),
    "ner-type-scheme": (TYPE_LABELS, lambda rng: _tag_rows(rng, TYPE_LABELS, 80)),
    "pico": (PICO_LABELS, lambda rng: _tag_rows(rng, PICO_LABELS, 80)),
    "pair": (CLASSES, lambda rng: _class_rows(rng, 90)),
    "relation": (CLASSES, lambda rng: _class_rows(rng, 90)),
    "similarity": ([], lambda rng: _score_rows(rng, 40)),
    "multilabel": (MULTI, lambda rng: _multilabel_rows(rng, 90)),
}


def _drawn(rows, units, unit_of):
    """The rows of the drawn units, in draw order; a unit drawn twice is two documents."""
    out = []
    for k, u in enumerate(units):
        for row in (r for r in rows if unit_of(r) == u):
            out.append({**row, "document": f"{u}#{k}"} if "document" in row else row)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_count_form_equals_rescoring_the_drawn_units(case):
    """For fixed draws (all units once, then three resamples), the vectorised scores equal the
    task type's own scores of the drawn rows: seqeval for NER/PICO entities and spans,
    scikit-learn for F1/MSE/R², scipy for the correlations."""
    labels, make = CASES[case]
    task = tasks.get(case.removesuffix("-type-scheme"))
    rng = np.random.default_rng(0)
    rows = make(rng)
    resampling = task.resampling(labels, rows)
    if case == "multilabel":
        units = sorted({r["document"] for r in rows})
        unit_of = lambda r: r["document"]  # noqa: E731
        assert resampling.n == len(units) < len(rows)  # documents are drawn, not sentences
    else:
        units = list(range(len(rows)))
        unit_of = lambda r: rows.index(r)  # noqa: E731
        assert resampling.n == len(rows)
    draws = np.vstack([np.arange(resampling.n), rng.integers(0, resampling.n, (3, resampling.n))])
    got = resampling.scores(draws)
    for b, idx in enumerate(draws):
        expected = task.score_rows(labels, _drawn(rows, [units[i] for i in idx], unit_of))
        for metric, value in expected.items():
            assert got[metric][b] == pytest.approx(value, abs=1e-12), (case, b, metric)
    assert set(task.score_rows(labels, rows)) <= set(got)  # every score has its count form


def test_draw_counts():
    counts = draw_counts(np.array([[0, 0, 2], [1, 2, 2]]), 4)
    np.testing.assert_array_equal(counts, [[2, 0, 1, 0], [0, 1, 2, 0]])


def test_interval_is_the_percentiles_of_a_plain_loop_over_the_same_draws():
    """scipy draws `rng.integers(0, n, (B, n))` from the seeded generator; the percentile
    interval of the task's own scores over those rows is the interval."""
    task = tasks.get("relation")
    rows = _class_rows(np.random.default_rng(1), 60)
    settings = BootstrapSettings(resamples=300, confidence=0.9, seed=5)
    got = confidence_intervals(
        task.resampling(CLASSES, rows), settings, ["macro_f1", "positive_micro_f1"]
    )
    draws = np.random.default_rng(5).integers(0, 60, (300, 60))
    for metric in ("macro_f1", "positive_micro_f1"):
        values = [task.score_rows(CLASSES, [rows[i] for i in idx])[metric] for idx in draws]
        assert got[metric] == pytest.approx(tuple(np.quantile(values, [0.05, 0.95])))
    assert confidence_intervals(task.resampling(CLASSES, rows), settings, ["accuracy"]) == (
        confidence_intervals(task.resampling(CLASSES, rows), settings, ["accuracy"])
    )  # seeded: the same interval every time


def test_intervals_cover_a_known_accuracy_about_95_percent_of_the_time():
    """Data sets whose predictions are right with probability 0.7: the 95 % interval of the
    accuracy holds 0.7 in about 95 of 100 (binomial sd about 2)."""
    task = tasks.get("pair")
    settings = BootstrapSettings(resamples=400, seed=0)
    covered = 0
    for seed in range(100):
        rng = np.random.default_rng(100 + seed)
        right = rng.random(200) < 0.7
        rows = [
            {"id": str(i), "gold": "a", "predicted": "a" if ok else "b"}
            for i, ok in enumerate(right)
        ]
        low, high = confidence_intervals(task.resampling(["a", "b"], rows), settings, ["accuracy"])[
            "accuracy"
        ]
        covered += low <= 0.7 <= high
    assert 88 <= covered <= 100


def test_no_interval_from_one_unit_or_for_an_unknown_metric():
    task = tasks.get("pair")
    one = [{"id": "0", "gold": "a", "predicted": "a"}]
    assert (
        confidence_intervals(task.resampling(["a"], one), BootstrapSettings(), ["accuracy"]) == {}
    )
    rows = one * 5
    assert confidence_intervals(task.resampling(["a"], rows), BootstrapSettings(), ["nope"]) == {}


def test_a_perfect_score_has_a_degenerate_interval():
    task = tasks.get("ner")
    rows = [
        {"id": str(i), "gold": ["B-Disease", "O"], "predicted": ["B-Disease", "O"]}
        for i in range(9)
    ]
    ci = confidence_intervals(task.resampling(NER_LABELS, rows), BootstrapSettings(), ["entity_f1"])
    assert ci == {"entity_f1": (1.0, 1.0)}
