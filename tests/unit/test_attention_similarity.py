"""Attention similarity and entropy against naive loops and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from bioprobe.analysis.attention import (
    AttentionComparison,
    EntropyAccumulator,
    cosine_flat,
    head_entropy,
    js_rows,
    to_tidy_rows,
)

L, HH = 3, 4


def _maps(rng, t, sparse=False):
    """Random row-stochastic maps [L, Hh, T, T]; `sparse` zeroes some entries (causal-like)."""
    logits = rng.normal(scale=2.0, size=(L, HH, t, t))
    p = np.exp(logits)
    if sparse:
        p *= rng.random(p.shape) > 0.4
        p[..., 0] += 1e-3  # keep every row non-empty
    return p / p.sum(axis=-1, keepdims=True)


def _naive(pairs):
    """Per-example, per-layer, per-head Python loop with numpy/scipy (float64)."""
    out = {
        k: np.zeros((L, HH)) for k in ("cosine", "js_divergence", "entropy", "entropy_reference")
    }
    for a, b in pairs:
        for layer in range(L):
            for head in range(HH):
                x, y = a[layer, head], b[layer, head]
                xf, yf = x.ravel(), y.ravel()
                out["cosine"][layer, head] += xf @ yf / (np.linalg.norm(xf) * np.linalg.norm(yf))
                js = [jensenshannon(r, s, base=math.e) ** 2 for r, s in zip(x, y, strict=True)]
                out["js_divergence"][layer, head] += np.mean(js)
                for key, m in (("entropy", x), ("entropy_reference", y)):
                    ent = [-sum(p * math.log(p) for p in row if p > 0) for row in m]
                    out[key][layer, head] += np.mean(ent)
    return {k: v / len(pairs) for k, v in out.items()}


def test_map_against_itself():
    a = _maps(np.random.default_rng(0), 7, sparse=True)
    np.testing.assert_allclose(cosine_flat(a, a).numpy(), 1.0, atol=1e-6)
    np.testing.assert_array_equal(js_rows(a, a).numpy(), 0.0)


def test_uniform_entropy_is_ln_t():
    t = 9
    uniform = torch.full((L, HH, t, t), 1.0 / t)
    np.testing.assert_allclose(head_entropy(uniform).numpy(), math.log(t), rtol=1e-6)


def test_one_hot_rows_entropy_zero_and_disjoint_js_ln2():
    t = 5
    eye = torch.eye(t).expand(L, HH, t, t)
    shifted = torch.roll(eye, 1, dims=-1)
    np.testing.assert_array_equal(head_entropy(eye).numpy(), 0.0)
    np.testing.assert_allclose(js_rows(eye, shifted).numpy(), math.log(2), rtol=1e-6)
    np.testing.assert_array_equal(cosine_flat(eye, shifted).numpy(), 0.0)


@pytest.mark.parametrize("sparse", [False, True])
def test_comparison_equals_naive_loop(sparse):
    rng = np.random.default_rng(1)
    pairs = [(_maps(rng, t, sparse), _maps(rng, t, sparse)) for t in (2, 5, 11, 8, 1)]
    comp = AttentionComparison()
    for a, b in pairs:
        comp.update(torch.from_numpy(a), b)  # torch and numpy inputs both accepted
    got = comp.result()
    want = _naive(pairs)
    assert comp.n_examples == len(pairs)
    assert sorted(got) == ["cosine", "entropy", "entropy_reference", "js_divergence"]
    for key in want:
        assert got[key].shape == (L, HH)
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=0, err_msg=key)
    assert (got["js_divergence"] >= 0).all() and (got["js_divergence"] <= math.log(2)).all()


def test_close_maps_small_js_accurate():
    rng = np.random.default_rng(2)
    a = _maps(rng, 16)
    b = a * (1 + 1e-3 * rng.normal(size=a.shape))
    b /= b.sum(axis=-1, keepdims=True)
    got = js_rows(a, b).numpy()
    want = np.array(
        [
            [
                np.mean([jensenshannon(r, s) ** 2 for r, s in zip(a[i, j], b[i, j], strict=True)])
                for j in range(HH)
            ]
            for i in range(L)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=0)


def test_batched_update_equals_one_by_one_and_float16():
    rng = np.random.default_rng(3)
    a = np.stack([_maps(rng, 6) for _ in range(4)])
    b = np.stack([_maps(rng, 6) for _ in range(4)])
    batched, single = AttentionComparison(), AttentionComparison()
    batched.update(a, b)
    for x, y in zip(a, b, strict=True):
        single.update(x, y)
    half = AttentionComparison()
    half.update(torch.from_numpy(a).half(), torch.from_numpy(b).half())
    assert batched.n_examples == single.n_examples == 4
    for key, value in single.result().items():
        np.testing.assert_allclose(batched.result()[key], value, atol=1e-6)
        np.testing.assert_allclose(half.result()[key], value, atol=2e-3)


def test_entropy_accumulator_matches_comparison():
    rng = np.random.default_rng(4)
    pairs = [(_maps(rng, t), _maps(rng, t)) for t in (3, 9)]
    comp, ent = AttentionComparison(), EntropyAccumulator()
    for a, b in pairs:
        comp.update(a, b)
        ent.update(b)
    assert ent.n_examples == 2
    np.testing.assert_allclose(ent.result()["entropy"], comp.result()["entropy_reference"])


def test_accumulator_errors():
    rng = np.random.default_rng(5)
    comp = AttentionComparison()
    with pytest.raises(ValueError, match="no examples"):
        comp.result()
    with pytest.raises(ValueError, match="differ in shape"):
        comp.update(_maps(rng, 3), _maps(rng, 4))
    comp.update(_maps(rng, 3), _maps(rng, 3))
    with pytest.raises(ValueError, match="changed"):
        comp.update(np.ones((L + 1, HH, 2, 2)) / 2, np.ones((L + 1, HH, 2, 2)) / 2)
    with pytest.raises(ValueError, match="square"):
        EntropyAccumulator().update(np.ones((L, HH, 2, 3)))


def test_to_tidy_rows_order_and_numbering():
    result = {
        "js_divergence": np.arange(6.0).reshape(2, 3),
        "cosine": -np.arange(6.0).reshape(2, 3),
    }
    rows = to_tidy_rows(result, {"task": "ncbi", "model": "tiny"})
    assert len(rows) == 12
    assert rows[0] == {
        "task": "ncbi",
        "model": "tiny",
        "layer": 1,
        "head": 1,
        "metric": "cosine",
        "value": -0.0,
    }
    keys = [(r["layer"], r["head"], r["metric"]) for r in rows]
    assert keys == sorted(keys)
    last = rows[-1]
    assert [last[k] for k in ("layer", "head", "metric", "value")] == [2, 3, "js_divergence", 5.0]
    assert all(type(r["value"]) is float for r in rows)
    with pytest.raises(ValueError, match="clash"):
        to_tidy_rows(result, {"layer": 0})
    with pytest.raises(ValueError, match="one"):
        to_tidy_rows({"a": np.zeros((2, 3)), "b": np.zeros((3, 2))}, {})
