"""The linear probe's solver (bioprobe.probing.softmax): scikit-learn's optimum on correlated
features with and without preconditioning, several targets in one solve, the whitening."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bioprobe.probing import LinearProbe, fit_layers_linear
from bioprobe.probing.softmax import preconditioner, standardise_, torch_threads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def correlated(seed, n, h, k, n_layers=1):
    """Features mixed by a badly conditioned matrix (as transformer features are), labels from
    a noisy linear rule: an ill-conditioned, non-separable problem."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(h, h)) * np.logspace(0, -2, h)[:, None] + np.eye(h) * 0.05
    z = rng.normal(size=(n_layers, n, h))
    x = z @ mix
    rule = rng.normal(size=(h, k))
    y = (z[0] @ rule + rng.gumbel(size=(n, k)) * 2).argmax(1)
    return x.astype(np.float32), y


@pytest.mark.parametrize(
    ("n", "h", "k"),
    [(800, 40, 2), (800, 40, 3), (300, 100, 2), (300, 100, 3)],  # N >= 4H, then N < 4H
)
def test_linear_probe_reaches_sklearns_optimum_on_correlated_features(n, h, k):
    x, y = correlated(0, n, h, k)
    probe = LinearProbe(C=1.0, tol=1e-5, max_iter=1000).fit(x[0], y)
    xs = StandardScaler().fit_transform(x[0].astype(np.float64))
    ref = LogisticRegression(C=1.0, tol=1e-8, max_iter=10000).fit(xs, y)
    scale = np.abs(ref.coef_).max()
    assert np.abs(probe.coef_ - ref.coef_).max() <= 0.01 * scale
    assert np.abs(probe.intercept_ - ref.intercept_).max() <= 0.01 * max(1.0, scale)
    preconditioned = preconditioner(torch.from_numpy(xs[None]).float()) is not None
    assert preconditioned == (n >= 4 * h)
    if preconditioned:  # measured: 17-18 iterations where scikit-learn's lbfgs takes 187-269
        assert probe.n_iter_ * 4 < ref.n_iter_[0]


def test_preconditioner_whitens_the_features_second_moments():
    x, _ = correlated(1, 1000, 30, 2, n_layers=2)
    xt = torch.from_numpy(x.copy())
    standardise_(xt)
    m = preconditioner(xt)
    assert m.shape == (2, 30, 30)
    sigma = xt.transpose(1, 2) @ xt / xt.shape[1] + 1e-3 * torch.eye(30)
    assert torch.allclose(m @ sigma @ m.transpose(1, 2), torch.eye(30).expand(2, 30, 30), atol=1e-3)
    assert torch.equal(m, torch.tril(m))  # triangular: cheap to apply


def test_several_targets_in_one_solve_equal_separate_fits():
    x, y = correlated(2, 600, 24, 3, n_layers=3)
    xe, _ = correlated(3, 200, 24, 3, n_layers=3)
    rng = np.random.default_rng(0)
    names = np.array(["B", "I", "O"])
    targets = [
        names[y],  # the task, string labels
        names[rng.permutation(y)],  # a control with the same classes
        (y > 0).astype(int),  # two classes: solved apart from the three-class targets
        np.full(len(y), 7),  # one class: predicted as is
    ]
    together = fit_layers_linear(x, np.array(targets, dtype=object), xe)
    assert together.shape == (4, 3, 200)
    for t, labels in enumerate(targets):
        alone = fit_layers_linear(x, labels, xe)
        assert alone.shape == (3, 200)
        # the same problems to the same tolerance: predictions agree but for near-ties
        assert np.mean(together[t].astype(str) == alone.astype(str)) >= 0.99
    assert set(np.unique(together[3])) == {7}


def test_targets_must_match_the_examples():
    x, y = correlated(4, 100, 8, 2)
    with pytest.raises(ValueError, match="expected"):
        fit_layers_linear(x, np.stack([y, y])[:, :50], x)


def test_the_preconditioner_does_not_depend_on_the_thread_count():
    # a probe table must be the same whichever number of cores its job got (local vs SLURM);
    # LAPACK's threaded Cholesky of a 384 x 384 matrix rounded differently with 1 and 2 threads
    x = torch.from_numpy(correlated(5, 1600, 384, 2, n_layers=4)[0])
    standardise_(x)
    with torch_threads(1):
        one = preconditioner(x)
    with torch_threads(2):
        two = preconditioner(x)
    assert torch.equal(one, two)
