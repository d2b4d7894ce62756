"""MDL probing (bioprobe.probing.mdl): the batched online code against a plain per-block
scikit-learn loop, what its compression says on informative and random labels, determinism,
and its tidy rows for class labels and label sets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bioprobe import tasks
from bioprobe.analysis.stages import _mdl_rows
from bioprobe.probing import ProbeData
from bioprobe.probing.control import control_labels_ner_pair
from bioprobe.probing.mdl import (
    PROBE,
    UNIFORM_WEIGHT,
    block_ends,
    block_order,
    mdl_multilabel_rows,
    mdl_rows,
    online_codelengths,
)
from bioprobe.probing.multilabel import MultiLabelProbeData
from bioprobe.probing.rows import control_seeds
from bioprobe.settings import ProbeSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def features(seed, n, h, n_layers):
    """Correlated features (a badly conditioned mix, as transformer features are)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(h, h)) * np.logspace(0, -1.5, h)[:, None] + np.eye(h) * 0.1
    return (rng.normal(size=(n_layers, n, h)) @ mix).astype(np.float32)


def sklearn_online_bits(x, y, n_classes, seed, C=1.0):
    """The online code, block by block with scikit-learn: standardised features, a
    LogisticRegression per block on the blocks before it, its log-loss in bits on the block,
    mixed with the uniform code as bioprobe does. A model of 2 of K > 2 classes is bioprobe's
    multinomial over those 2, which is scikit-learn's binomial at twice the C."""
    n = len(y)
    order, ends = block_order(n, seed), block_ends(n)
    xs, ys = StandardScaler().fit_transform(x.astype(np.float64))[order], y[order]
    bits = ends[0] * math.log2(n_classes)
    for start, stop in itertools.pairwise(ends):
        seen = np.unique(ys[:start])
        p = np.zeros((stop - start, n_classes))
        if len(seen) == 1:
            p[:, seen[0]] = 1.0
        else:
            c = 2 * C if len(seen) == 2 < n_classes else C
            with threadpool_limits(1):  # tiny fits: BLAS threads only contend
                model = LogisticRegression(C=c, tol=1e-8, max_iter=10000)
                model.fit(xs[:start], ys[:start])
            p[:, model.classes_] = model.predict_proba(xs[start:stop])
        p = (1 - UNIFORM_WEIGHT) * p + UNIFORM_WEIGHT / n_classes
        bits -= np.log2(p[np.arange(stop - start), ys[start:stop]]).sum()
    return bits


@pytest.mark.parametrize(("n_classes", "used"), [(2, 2), (3, 3), (4, 3)])
def test_online_codelengths_equal_a_per_block_sklearn_loop(n_classes, used):
    n, h = 300, 24  # blocks below and above H examples: both of the solver's paths
    x = features(0, n, h, 3)
    rng = np.random.default_rng(1)
    task = (x[0] @ rng.normal(size=(h, used)) + rng.gumbel(size=(n, used))).argmax(1)
    control = rng.permutation(task)
    got = online_codelengths(
        x, np.stack([task, control]), n_classes, seed=5, tol=1e-5, max_iter=1000
    )
    assert got.shape == (2, 3)
    ref = np.array(
        [
            [sklearn_online_bits(x[layer], y, n_classes, 5) for layer in range(3)]
            for y in (task, control)
        ]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-3)


def test_compression_far_above_one_for_linear_labels_and_about_one_for_random():
    n, h = 2000, 16
    x = features(2, n, h, 2)  # layer 0 carries the labels, layer 1 is independent of them
    rng = np.random.default_rng(3)
    linear = (x[0] @ rng.normal(size=(h, 3))).argmax(1)
    random = rng.integers(0, 3, n)
    online = online_codelengths(x, np.stack([linear, random]), 3, seed=0)
    compression = n * math.log2(3) / online
    assert compression[0, 0] > 5  # measured: about 8
    assert np.all(compression[0, 1] < 1.05)  # the same labels, other features: nothing to learn
    assert np.all(compression[1] < 1.05)  # random labels: no better than uniform


def test_online_codelengths_are_deterministic_in_the_seed():
    x = features(4, 400, 12, 2)
    y = np.random.default_rng(5).integers(0, 3, (2, 400))
    first = online_codelengths(x, y, 3, seed=1)
    np.testing.assert_array_equal(first, online_codelengths(x, y, 3, seed=1))
    assert not np.allclose(first, online_codelengths(x, y, 3, seed=2))


def test_block_ends_follow_voita_and_titov():
    assert block_ends(5000).tolist() == [5, 10, 20, 40, 80, 160, 312, 625, 1250, 2500, 5000]
    assert block_ends(3).tolist() == [1, 2, 3]  # small n: merged blocks, the first non-empty


def ner_words(n=240, h=10):
    """Features [2, n, h] of n words in sentences of 10, BIO labels linear in layer 0, word
    types from a 40-word vocabulary."""
    x = features(6, n, h, 2)
    rng = np.random.default_rng(7)
    labels = (x[0] @ rng.normal(size=(h, 3))).argmax(1)
    words = [f"w{i}" for i in rng.integers(0, 40, n)]
    return x, labels, words, ProbeData(x, labels, ["O", "B-D", "I-D"], np.full(n // 10, 10), words)


def test_mdl_rows_of_ner_words_code_the_probes_labels():
    n = 240
    x, labels, words, fit = ner_words(n)
    score = ProbeData(x[:, :50], labels[:50], ["O", "B-D", "I-D"], np.full(5, 10), words[:50])
    rows = mdl_rows(fit, score, {"C": 0.5}, label_mode="bio", seed=3)
    assert {r["probe"] for r in rows} == {PROBE}
    assert len(rows) == 2 * 2 * 3  # layers x targets x metrics
    value = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    control, _ = control_labels_ner_pair(words, labels, words[:50], labels[:50], 3, n_labels=3)
    expected = online_codelengths(x, np.stack([labels, control]), 3, seed=3, C=0.5)
    for t, target in enumerate(("task", "control")):
        for layer in range(2):
            online = value[(layer, target, "mdl_online_bits")]
            assert online == pytest.approx(expected[t, layer])
            assert value[(layer, target, "mdl_uniform_bits")] == pytest.approx(n * math.log2(3))
            assert value[(layer, target, "compression")] == pytest.approx(n * math.log2(3) / online)


def test_mdl_multilabel_rows_sum_one_code_per_label():
    n, h, k = 200, 8, 3
    x = features(8, n, h, 2)
    targets = (x[0] @ np.random.default_rng(9).normal(size=(h, k)) > 0.5).astype(int)
    fit = MultiLabelProbeData(x, targets, ["a", "b", "c"])
    rows = mdl_multilabel_rows(fit, fit, targets=("task",), seed=2)
    online = {r["layer"]: r["value"] for r in rows if r["metric"] == "mdl_online_bits"}
    per_label = online_codelengths(x, targets.T, 2, seed=2).sum(0)
    assert [online[0], online[1]] == pytest.approx(per_label.tolist())
    assert {r["value"] for r in rows if r["metric"] == "mdl_uniform_bits"} == {n * k}


def test_task_types_route_mdl_to_their_code_and_skip_scores():
    x = features(10, 120, 6, 2)
    sets = MultiLabelProbeData(x, (x[0, :, :2] > 0).astype(int), ["a", "b"])
    rows = _mdl_rows(tasks.get("multilabel"), sets, sets, ProbeSettings(), seed=0, threads=1)
    assert {r["probe"] for r in rows} == {PROBE} and len(rows) == 2 * 2 * 3
    uniform = {r["value"] for r in rows if r["metric"] == "mdl_uniform_bits"}
    assert uniform == {120 * 2}  # one bit per label and unit
    # similarity's targets are real-valued scores: no MDL rows (the log says so)
    assert _mdl_rows(tasks.get("similarity"), None, None, ProbeSettings(), 0, 1) == []


def test_the_control_codelength_is_the_mean_over_its_draws():
    x, labels, words, fit = ner_words()
    rows = mdl_rows(fit, fit, {"C": 0.5}, label_mode="bio", seed=3, control_draws=2)
    value = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    controls = [
        control_labels_ner_pair(words, labels, words, labels, s, n_labels=3)[0]
        for s in control_seeds(3, 2).values()
    ]
    expected = online_codelengths(x, np.stack([labels, *controls]), 3, seed=3, C=0.5)
    for layer in range(2):
        assert value[(layer, "task", "mdl_online_bits")] == pytest.approx(expected[0, layer])
        mean = expected[1:, layer].mean()
        assert value[(layer, "control", "mdl_online_bits")] == pytest.approx(mean)
    # multi-label: each draw one shuffle of the label rows
    sets = MultiLabelProbeData(x, (x[0][:, :3] > 0).astype(int), ["a", "b", "c"])
    one = mdl_multilabel_rows(sets, sets, seed=2, control_draws=1)
    two = mdl_multilabel_rows(sets, sets, seed=2, control_draws=2)
    bits = {(r["layer"], r["target"]): r["value"] for r in two if r["metric"] == "mdl_online_bits"}
    first = {(r["layer"], r["target"]): r["value"] for r in one if r["metric"] == "mdl_online_bits"}
    assert bits[0, "task"] == pytest.approx(first[0, "task"])
    assert bits[0, "control"] != pytest.approx(first[0, "control"])
