"""Representation similarity of two representations of the same rows, from their second moments.

Three measures, each comparing `X [n, d1]` with `Y [n, d2]` (e.g. one layer of a fine-tuned
variant against the pretrained model on the same words or pairs); all are invariant to
translation, orthogonal transforms and isotropic scaling of either side:

- ``cka``: linear CKA (Kornblith et al. 2019), ||YᵀX||²_F / (||XᵀX||_F ||YᵀY||_F) on centred
  X, Y; in [0, 1], 1 = the same geometry.
- ``procrustes``: the angular orthogonal Procrustes distance (Williams et al. 2021, "Generalized
  shape metrics on neural representations"): centre, scale each side to unit Frobenius norm,
  then arccos(max over orthogonal R of <X R, Y>_F) = arccos(||XᵀY||_*), the nuclear norm. A
  metric in radians, in [0, π/2], 0 = identical up to rotation and scale. With d1 ≠ d2 the
  smaller side is taken as zero-padded, which changes no singular value of XᵀY: nothing to do.
- ``svcca`` (Raghu et al. 2017): each side reduced to its top principal directions that keep
  `SVCCA_VARIANCE` (99 %) of its variance, then the mean canonical correlation of the two
  reduced sides; in [0, 1], 1 = the same subspace. Chosen over PWCCA (Morcos et al. 2018):
  PWCCA weighs the canonical directions by their overlap with individual neurons, so it changes
  under rotations of the neuron basis (transformers' few outlier dimensions dominate it) and
  depends on which side gives the weights; SVCCA is symmetric and rotation-invariant like the
  two others. Like every CCA, it is biased upwards when the kept dimensions are not few against
  n; compare it between variants on the same units, not against an absolute scale.

All three are functions of the centred second moments XᵀX, YᵀY, YᵀX alone, so `CrossMoments`
accumulates those over chunks of rows (float64, O(d1² + d2² + d1·d2) per layer whatever n) and
`similarity_per_layer` computes every measure for every layer of two dump stacks in one pass,
reading them a block of layers × rows at a time. A representation that is constant (up to
rounding) over the rows gives NaN: no measure is defined there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: the measures, in the order the tables and figures list them
METRICS = ("cka", "procrustes", "svcca")
#: share of each side's variance its SVCCA subspace keeps (Raghu et al. 2017)
SVCCA_VARIANCE = 0.99

# A side whose centred sum of squares is below this fraction of its raw sum of squares is
# constant up to rounding: every measure is undefined there (NaN), not a ratio of rounding errors.
_DEGENERATE = 1e-20
_EPS = torch.finfo(torch.float64).eps


def as_f64(x: Any) -> torch.Tensor:
    """A float64 tensor of an array, memmap or tensor (float16 dumps included)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def check_rows(x: torch.Tensor, y: torch.Tensor, min_dim: int) -> None:
    """`x`, `y` are `[..., n, d1]`, `[..., n, d2]` with the same leading shape and rows."""
    if x.dim() < min_dim or y.dim() != x.dim():
        raise ValueError(f"expected [..., n, d] inputs, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(
            f"X and Y must hold the same rows: shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _sq(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=(-2, -1))


def _trace(m: torch.Tensor) -> torch.Tensor:
    return m.diagonal(dim1=-2, dim2=-1).sum(-1)


@dataclass(frozen=True)
class Moments:
    """Centred second moments of `X [..., n, d1]` and `Y [..., n, d2]` (leading dims: layers).

    `xx` = XᵀX `[..., d1, d1]`, `yy` = YᵀY, `yx` = YᵀX `[..., d2, d1]`, all of centred X, Y;
    `constant` `[...]`: True where either side is constant over the rows.
    """

    xx: torch.Tensor
    yy: torch.Tensor
    yx: torch.Tensor
    constant: torch.Tensor

    def _undefined(self, values: torch.Tensor) -> torch.Tensor:
        return torch.where(self.constant, torch.nan, values)

    def cka(self) -> torch.Tensor:
        """Linear CKA `[...]`."""
        norm = torch.linalg.matrix_norm
        denom = (norm(self.xx) * norm(self.yy)).clamp_min(torch.finfo(torch.float64).tiny)
        return self._undefined(norm(self.yx) ** 2 / denom)

    def procrustes(self) -> torch.Tensor:
        """Angular Procrustes distance `[...]` in radians."""
        nuclear = torch.linalg.svdvals(self.yx).sum(-1)
        norms = (
            (_trace(self.xx) * _trace(self.yy)).sqrt().clamp_min(torch.finfo(torch.float64).tiny)
        )
        # rounding can push the cosine a hair past 1 for identical sides
        return self._undefined(torch.arccos((nuclear / norms).clamp(0.0, 1.0)))

    def canonical_correlations(self, variance: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical correlations `[..., min(d1, d2)]` (descending) of the two sides, each
        reduced to the principal directions that keep `variance` of its variance (1.0: every
        direction above the numerical rank), and how many are defined `[...]` (min of the two
        reduced ranks; the rest are zero)."""
        wx, kx = _whitener(self.xx, variance)
        wy, ky = _whitener(self.yy, variance)
        # singular values of the whitened cross-covariance: the canonical correlations
        rho = torch.linalg.svdvals(wy.transpose(-1, -2) @ self.yx @ wx).clamp(max=1.0)
        return rho[..., : min(self.xx.shape[-1], self.yy.shape[-1])], torch.minimum(kx, ky)

    def svcca(self, variance: float = SVCCA_VARIANCE) -> torch.Tensor:
        """SVCCA `[...]`: the mean of the defined canonical correlations of the reduced sides."""
        rho, k = self.canonical_correlations(variance)
        defined = torch.arange(rho.shape[-1]) < k.unsqueeze(-1)
        mean = (rho * defined).sum(-1) / k.clamp_min(1)
        return self._undefined(torch.where(k > 0, mean, torch.nan))

    def measure(self, metric: str) -> torch.Tensor:
        """One of `METRICS` by name."""
        if metric not in METRICS:
            raise ValueError(f"unknown similarity metric {metric!r} (known: {', '.join(METRICS)})")
        return getattr(self, metric)()


def _whitener(cov: torch.Tensor, variance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`W [..., d, d]` with Wᵀ cov W = the identity on the kept principal directions (columns
    of the others zero), and how many are kept `[...]`: the top ones until `variance` of the
    total is reached, none below the numerical rank."""
    lam, vec = torch.linalg.eigh(cov)  # ascending
    lam, vec = lam.flip(-1), vec.flip(-1)
    total = lam.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    before = (lam.cumsum(-1) - lam) / total  # share of variance of the larger directions
    rank_tol = lam[..., :1] * cov.shape[-1] * _EPS
    keep = (before < variance) & (lam > rank_tol)
    scale = torch.where(keep, lam.clamp_min(torch.finfo(torch.float64).tiny).rsqrt(), 0.0)
    return vec * scale.unsqueeze(-2), keep.sum(-1)


class CrossMoments:
    """XᵀX, YᵀY, YᵀX and the column sums of two representations, accumulated over chunks of
    rows; `centred()` gives the `Moments` of all rows seen, as if computed at once.

    `update(X_chunk, Y_chunk)` takes `[n_i, d1]`, `[n_i, d2]` or stacks `[L+1, n_i, d]`. Rows are
    shifted by the first chunk's mean before accumulating, so large feature means (outlier
    dimensions) do not cost precision when the moments are centred at the end.
    """

    def __init__(self) -> None:
        self.n_rows = 0
        self._shift: tuple[torch.Tensor, torch.Tensor] | None = None
        self._stats: dict[str, torch.Tensor] = {}

    def update(self, X: Any, Y: Any) -> None:
        """Add a chunk of matching rows of the two representations."""
        x, y = as_f64(X), as_f64(Y)
        check_rows(x, y, 2)
        if x.shape[-2] == 0:
            return
        if self._shift is None:
            self._shift = (x.mean(dim=-2, keepdim=True), y.mean(dim=-2, keepdim=True))
        elif x.shape[:-2] + x.shape[-1:] != self._shift[0].shape[:-2] + self._shift[0].shape[-1:]:
            raise ValueError(f"chunk shape {tuple(x.shape)} does not match earlier chunks")
        elif y.shape[-1] != self._shift[1].shape[-1]:
            raise ValueError(f"chunk shape {tuple(y.shape)} does not match earlier chunks")
        x, y = x - self._shift[0], y - self._shift[1]
        xt, yt = x.transpose(-1, -2), y.transpose(-1, -2)
        chunk = {"sx": x.sum(dim=-2), "sy": y.sum(dim=-2), "xx": xt @ x, "yy": yt @ y, "yx": yt @ x}
        for name, value in chunk.items():
            self._stats[name] = self._stats[name] + value if name in self._stats else value
        self.n_rows += x.shape[-2]

    def centred(self) -> Moments:
        """The centred moments of every row added so far."""
        if self._shift is None:
            raise ValueError("no rows were added")
        s, n = self._stats, self.n_rows
        sx, sy = s["sx"].unsqueeze(-1), s["sy"].unsqueeze(-1)  # [..., d, 1]
        xx = s["xx"] - sx @ sx.transpose(-1, -2) / n
        yy = s["yy"] - sy @ sy.transpose(-1, -2) / n
        yx = s["yx"] - sy @ sx.transpose(-1, -2) / n
        # raw sums of squares (shifted part + shift), the scale of the degeneracy test
        raw_x = _trace(xx) + n * _sq(self._shift[0])
        raw_y = _trace(yy) + n * _sq(self._shift[1])
        constant = (_trace(xx) <= _DEGENERATE * raw_x) | (_trace(yy) <= _DEGENERATE * raw_y)
        return Moments(xx, yy, yx, constant)


def _moments(X: Any, Y: Any) -> Moments:
    acc = CrossMoments()
    acc.update(X, Y)
    return acc.centred()


def procrustes_distance(X: Any, Y: Any) -> float:
    """Angular Procrustes distance (radians, [0, π/2]) of `X [n, d1]` and `Y [n, d2]`."""
    return float(_moments(X, Y).procrustes())


def svcca(X: Any, Y: Any, variance: float = SVCCA_VARIANCE) -> float:
    """SVCCA of `X [n, d1]` and `Y [n, d2]`: mean canonical correlation of their principal
    subspaces keeping `variance` of each side's variance."""
    return float(_moments(X, Y).svcca(variance))


def canonical_correlations(X: Any, Y: Any) -> np.ndarray:
    """Every canonical correlation of `X [n, d1]` and `Y [n, d2]` (plain CCA), descending."""
    rho, k = _moments(X, Y).canonical_correlations(1.0)
    return rho[: int(k)].numpy()


def similarity_per_layer(
    A: Any,
    B: Any,
    metrics: Sequence[str] = METRICS,
    *,
    max_bytes: int = 1 << 28,
) -> dict[str, np.ndarray]:
    """Each of `metrics` layer by layer of two stacks `[L+1, n, d1]`, `[L+1, n, d2]` (arrays or
    memmaps, any float dtype) -> ``{metric: [L+1]}``.

    One pass over the stacks: a group of layers at a time, its rows in chunks, so the float64
    copies and the moments stay within about `max_bytes` whatever n (one layer's moments are
    always held).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown similarity metric {unknown[0]!r} (known: {', '.join(METRICS)})")
    if len(A.shape) != 3 or len(B.shape) != 3 or tuple(A.shape[:2]) != tuple(B.shape[:2]):
        raise ValueError(
            f"expected stacks [L+1, n, d] with equal L+1 and n, got {tuple(A.shape)}, "
            f"{tuple(B.shape)}"
        )
    n_layers, n_rows, d1 = A.shape
    d2 = B.shape[2]
    # half the budget for the moments (and their decompositions), half for the row chunks
    per_layer = 8 * 2 * (d1 + d2) ** 2
    layers = min(n_layers, max(1, max_bytes // (2 * per_layer)))
    rows = max(1, max_bytes // (2 * 8 * layers * (d1 + d2)))
    out = {m: np.empty(n_layers, dtype=np.float64) for m in metrics}
    for start in range(0, n_layers, layers):
        stop = start + layers
        acc = CrossMoments()
        for first in range(0, n_rows, rows):
            acc.update(A[start:stop, first : first + rows], B[start:stop, first : first + rows])
        moments = acc.centred()
        for metric in metrics:
            out[metric][start:stop] = moments.measure(metric).cpu().numpy()
    return out
