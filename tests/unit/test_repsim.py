"""Representation similarity measures (analysis.repsim): the angular Procrustes distance against
scipy's orthogonal Procrustes solution, CCA and SVCCA against a QR/SVD computation on the rows,
their invariances, and the streamed per-layer pass against the in-memory measures.

(tests/unit/test_similarity.py is the *similarity task type*, not these measures.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from bioprobe.analysis.cka import linear_cka
from bioprobe.analysis.repsim import (
    METRICS,
    SVCCA_VARIANCE,
    CrossMoments,
    canonical_correlations,
    procrustes_distance,
    similarity_per_layer,
    svcca,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _normalised(x):
    x = x - x.mean(axis=0)
    return x / np.linalg.norm(x)


def _scipy_procrustes(x, y):
    """arccos(<X R, Y>_F) with R scipy's optimal rotation of the normalised, centred X (the
    narrower side zero-padded to the wider one's columns)."""
    xn, yn = _normalised(x), _normalised(y)
    d = max(xn.shape[1], yn.shape[1])
    xn = np.pad(xn, ((0, 0), (0, d - xn.shape[1])))
    yn = np.pad(yn, ((0, 0), (0, d - yn.shape[1])))
    r, _ = orthogonal_procrustes(xn, yn)
    return math.acos(min(1.0, float(np.sum((xn @ r) * yn))))


def _qr_cca(x, y):
    """Canonical correlations from orthonormal bases of the centred columns (Björck & Golub)."""
    qx, _ = np.linalg.qr(x - x.mean(axis=0))
    qy, _ = np.linalg.qr(y - y.mean(axis=0))
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


def _svd_reduce(x, variance):
    """The principal components of the centred rows that keep `variance` of the variance."""
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(share, variance) + 1)  # fewest components reaching `variance`
    return u[:, :k] * s[:k]


def _reference_svcca(x, y, variance=SVCCA_VARIANCE):
    rx, ry = _svd_reduce(x, variance), _svd_reduce(y, variance)
    return float(np.mean(_qr_cca(rx, ry)[: min(rx.shape[1], ry.shape[1])]))


def _related(rng, n=400, d1=12, d2=9, noise=1.5):
    """Two representations sharing part of their signal, with decaying spectra (so 99 % of the
    variance is reached before the last component) and a large mean."""
    z = rng.normal(size=(n, d1)) * np.geomspace(4.0, 0.02, d1)
    x = z @ ortho_group.rvs(d1, random_state=1) + 30.0
    y = z[:, :d2] @ rng.normal(size=(d2, d2)) + noise * rng.normal(size=(n, d2)) - 5.0
    return x, y


# ----------------------------------------------------------------------------- Procrustes


@pytest.mark.parametrize("d2", [12, 7])  # equal widths, then Y narrower (zero-padded)
def test_procrustes_matches_scipy_orthogonal_procrustes(rng, d2):
    x, y = _related(rng, d2=d2)
    assert procrustes_distance(x, y) == pytest.approx(_scipy_procrustes(x, y), abs=1e-10)
    assert procrustes_distance(y, x) == pytest.approx(_scipy_procrustes(y, x), abs=1e-10)


def test_procrustes_invariances_and_range(rng):
    x, y = _related(rng)
    base = procrustes_distance(x, y)
    assert 0.1 < base < math.pi / 2
    q = ortho_group.rvs(x.shape[1], random_state=2)
    assert procrustes_distance(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert procrustes_distance(4.2 * x - 7.0, y) == pytest.approx(base, abs=1e-10)
    assert procrustes_distance(x, 0.03 * y + 2.0) == pytest.approx(base, abs=1e-10)
    assert procrustes_distance(y, x) == pytest.approx(base, abs=1e-12)  # symmetric
    assert procrustes_distance(x, x @ q * 3.0 + 1.0) == pytest.approx(0.0, abs=1e-6)
    # not invariant to a general linear map: the metric sees the shape
    assert procrustes_distance(x, x * np.linspace(0.1, 3.0, x.shape[1])) > 0.05


def test_procrustes_of_independent_sides_is_near_the_right_angle(rng):
    x, y = rng.normal(size=(20000, 3)), rng.normal(size=(20000, 3))
    assert procrustes_distance(x, y) > 1.5  # π/2 = 1.571


# ------------------------------------------------------------------------------ CCA, SVCCA


def test_cca_matches_qr_reference_and_sklearn(rng):
    from sklearn.cross_decomposition import CCA

    x, y = _related(rng, n=300, d1=6, d2=4)
    got = canonical_correlations(x, y)
    np.testing.assert_allclose(got, _qr_cca(x, y), atol=1e-10)
    # sklearn's iterative CCA: the first canonical correlation (its default tolerance)
    u, v = CCA(n_components=1, max_iter=2000, tol=1e-10).fit_transform(x, y)
    assert got[0] == pytest.approx(abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1]), abs=1e-6)


def test_cca_invariant_to_invertible_linear_maps(rng):
    x, y = _related(rng)
    base = canonical_correlations(x, y)
    m = rng.normal(size=(x.shape[1], x.shape[1])) + 3 * np.eye(x.shape[1])
    np.testing.assert_allclose(canonical_correlations(x @ m + 1.0, y), base, atol=1e-8)
    np.testing.assert_allclose(canonical_correlations(x, x @ m), 1.0, atol=1e-8)


def test_svcca_matches_svd_then_cca_reference(rng):
    x, y = _related(rng)
    want = _reference_svcca(x, y)
    # the 99 % subspaces are narrower than the sides, and than each other (5 and 8 columns)
    kx, ky = (_svd_reduce(s, SVCCA_VARIANCE).shape[1] for s in (x, y))
    assert kx < ky < y.shape[1]
    assert svcca(x, y) == pytest.approx(want, abs=1e-10)
    assert svcca(x, y) != pytest.approx(float(np.mean(_qr_cca(x, y))), abs=1e-3)
    assert svcca(x, y, variance=0.9) == pytest.approx(_reference_svcca(x, y, 0.9), abs=1e-10)


def test_svcca_invariances_and_identity(rng):
    x, y = _related(rng)
    base = svcca(x, y)
    assert 0.0 < base < 1.0
    q = ortho_group.rvs(x.shape[1], random_state=3)
    assert svcca(x @ q * 0.5 + 3.0, y) == pytest.approx(base, abs=1e-10)
    assert svcca(x, 20.0 * y - 1.0) == pytest.approx(base, abs=1e-10)
    assert svcca(y, x) == pytest.approx(base, abs=1e-12)  # symmetric
    assert svcca(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    wide = rng.normal(size=(30, 50))  # fewer rows than columns: rank 29
    assert svcca(wide, wide) == pytest.approx(1.0, abs=1e-8)
    assert procrustes_distance(wide, wide) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------- layers and streaming


def test_constant_side_is_nan_for_every_measure(rng):
    moments = CrossMoments()
    moments.update(np.full((40, 3), 0.1), rng.normal(size=(40, 2)))
    centred = moments.centred()
    assert all(math.isnan(float(centred.measure(m))) for m in METRICS)
    with pytest.raises(ValueError, match="no rows"):
        CrossMoments().centred()
    with pytest.raises(ValueError, match="unknown similarity metric 'pwcca'"):
        centred.measure("pwcca")


@pytest.mark.parametrize("max_bytes", [1 << 28, 20_000])  # one block; a layer × 9 rows at a time
def test_similarity_per_layer_streamed_equals_in_memory(rng, tmp_path, max_bytes):
    a = rng.normal(size=(4, 250, 10)) * np.geomspace(3, 0.05, 10) + 50.0
    b = (
        a[:, :, :8] @ rng.normal(size=(8, 8))
        + rng.normal(size=(4, 250, 8)) * np.arange(4)[:, None, None]
    )
    np.save(tmp_path / "a.npy", a.astype(np.float16))
    np.save(tmp_path / "b.npy", b.astype(np.float16))
    a16, b16 = (np.load(tmp_path / f"{s}.npy", mmap_mode="r") for s in "ab")  # like a dump
    got = similarity_per_layer(a16, b16, max_bytes=max_bytes)
    assert list(got) == list(METRICS)
    a32, b32 = np.asarray(a16, dtype=np.float64), np.asarray(b16, dtype=np.float64)
    for layer in range(4):
        x, y = a32[layer], b32[layer]
        assert got["cka"][layer] == pytest.approx(linear_cka(x, y), abs=1e-10)
        assert got["procrustes"][layer] == pytest.approx(_scipy_procrustes(x, y), abs=1e-9)
        assert got["svcca"][layer] == pytest.approx(_reference_svcca(x, y), abs=1e-9)
    assert got["cka"][0] > got["cka"][-1] and got["procrustes"][0] < got["procrustes"][-1]
    only = similarity_per_layer(a16, b16, ["procrustes"], max_bytes=max_bytes)
    assert list(only) == ["procrustes"]
    np.testing.assert_array_equal(only["procrustes"], got["procrustes"])


def test_similarity_per_layer_errors(rng):
    a = rng.normal(size=(2, 10, 3))
    with pytest.raises(ValueError, match="stacks"):
        similarity_per_layer(a, a[:, :9])
    with pytest.raises(ValueError, match="unknown similarity metric 'cca'"):
        similarity_per_layer(a, a, ["cka", "cca"])
