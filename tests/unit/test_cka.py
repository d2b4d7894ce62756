"""Linear CKA: invariances, known values, batch vs streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from bioprobe.analysis.cka import StreamingCKA, cka_per_layer, linear_cka


def _naive_gram_cka(x, y):
    """Kornblith et al. eq. via centred Gram matrices HKH, HLH (sample space)."""
    n = x.shape[0]
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.sum(k * l_) / (np.linalg.norm(k) * np.linalg.norm(l_))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_cka_self_is_one(rng):
    x = rng.normal(size=(200, 16))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_matches_gram_formula_both_regimes(rng):
    for n, d1, d2 in [(300, 8, 12), (10, 40, 30)]:  # feature space, then sample space
        x, y = rng.normal(size=(n, d1)), rng.normal(size=(n, d2))
        y[:, :4] += x[:, :4]
        assert linear_cka(x, y) == pytest.approx(_naive_gram_cka(x, y), abs=1e-12)


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling(rng):
    x = rng.normal(size=(150, 10)) + 5.0
    y = x @ rng.normal(size=(10, 7)) + 0.5 * rng.normal(size=(150, 7))
    base = linear_cka(x, y)
    q = ortho_group.rvs(10, random_state=1)
    assert linear_cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(3.7 * x, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 0.01 * y) == pytest.approx(base, abs=1e-10)
    q_qr, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    assert linear_cka(x, y @ q_qr) == pytest.approx(base, abs=1e-10)
    assert linear_cka(y, x) == pytest.approx(base, abs=1e-12)  # symmetric


def test_cka_independent_features_small(rng):
    x, y = rng.normal(size=(5000, 10)), rng.normal(size=(5000, 10))
    assert 0.0 <= linear_cka(x, y) < 0.02


def test_cka_accepts_torch_float32_and_float16(rng):
    x, y = rng.normal(size=(100, 6)), rng.normal(size=(100, 5))
    want = linear_cka(x, y)
    got = linear_cka(torch.from_numpy(x).float(), torch.from_numpy(y).half())
    assert got == pytest.approx(want, abs=1e-2)
    assert isinstance(got, float)


def test_cka_constant_representation_is_nan(rng):
    y = rng.normal(size=(50, 3))
    assert math.isnan(linear_cka(np.full((50, 4), 0.1), y))
    assert math.isnan(linear_cka(np.full((49, 4), 1 / 3), y[:49]))


def test_cka_shape_errors(rng):
    with pytest.raises(ValueError, match="same rows"):
        linear_cka(rng.normal(size=(10, 3)), rng.normal(size=(11, 3)))
    with pytest.raises(ValueError):
        linear_cka(rng.normal(size=(2, 10, 3)), rng.normal(size=(2, 10, 3)))


@pytest.mark.parametrize("max_bytes", [1 << 28, 1])  # all layers batched, one layer at a time
def test_cka_per_layer_equals_loop(rng, max_bytes):
    a = rng.normal(size=(5, 120, 8))
    b = a[:, :, :6] * 2 + rng.normal(size=(5, 120, 6)) * np.arange(5)[:, None, None]
    got = cka_per_layer(a, b, max_bytes=max_bytes)
    want = [linear_cka(a[i], b[i]) for i in range(5)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(cka_per_layer(torch.from_numpy(a), torch.from_numpy(b)), want)
    assert got[0] > got[-1]  # more noise, less similar
    with pytest.raises(ValueError, match="stacks"):
        cka_per_layer(a, b[:4])


def test_streaming_equals_batch(rng):
    x = rng.normal(size=(1000, 12)) * 3 + 100.0  # large mean: the shift keeps precision
    y = np.tanh(x @ rng.normal(size=(12, 9)) / 50) + 0.1 * rng.normal(size=(1000, 9))
    stream = StreamingCKA()
    for start in range(0, 1000, 137):
        stream.update(x[start : start + 137], torch.from_numpy(y[start : start + 137]))
    assert stream.n_rows == 1000
    result = stream.result()
    assert isinstance(result, float)
    assert result == pytest.approx(linear_cka(x, y), abs=1e-8)


def test_streaming_stacks_equals_cka_per_layer(rng):
    a, b = rng.normal(size=(4, 300, 5)), rng.normal(size=(4, 300, 7))
    b[..., :5] += a
    stream = StreamingCKA()
    for start in range(0, 300, 64):
        stream.update(a[:, start : start + 64], b[:, start : start + 64])
    np.testing.assert_allclose(stream.result(), cka_per_layer(a, b), atol=1e-8)


def test_streaming_errors_and_degenerate(rng):
    stream = StreamingCKA()
    with pytest.raises(ValueError, match="no rows"):
        stream.result()
    stream.update(np.full((20, 3), 0.1), rng.normal(size=(20, 2)))
    stream.update(np.full((30, 3), 0.1), rng.normal(size=(30, 2)))
    assert math.isnan(stream.result())
    with pytest.raises(ValueError, match="does not match"):
        stream.update(rng.normal(size=(5, 4)), rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="does not match"):
        stream.update(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))
