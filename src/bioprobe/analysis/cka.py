"""Linear CKA (Kornblith et al. 2019): how similar two representations of the same rows are.

For column-centred X `[n, d1]` and Y `[n, d2]`:

    CKA(X, Y) = ||Yᵀ X||²_F / (||Xᵀ X||_F · ||Yᵀ Y||_F)

the feature-space form, cheap when d ≪ n; when n is the smaller side the equal sample-space form
tr(K L) / (||K||_F ||L||_F) with K = X Xᵀ, L = Y Yᵀ is used instead. CKA is 1 for identical
representations and invariant to orthogonal transforms and isotropic scaling of either side.
All arithmetic is float64. A representation that is constant (up to rounding) over the rows gives
NaN: CKA is undefined there.

`cka_per_layer` compares two stacks `[L+1, n, d]` layer by layer (e.g. `pretrained` against a
fine-tuned variant on the same words or pairs); `StreamingCKA` accumulates the same statistics
over chunks of rows so a dump never has to be in memory at once. The workflow's stage computes
CKA with the other representation-similarity measures in one pass (`repsim`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bioprobe.analysis.repsim import CrossMoments, as_f64, check_rows

# A side whose centred Gram norm is below this fraction of its squared magnitude is constant up
# to rounding: CKA is undefined there (NaN) rather than a ratio of rounding errors.
_DEGENERATE = 1e-20


def _ratio(hsic, norm_x, norm_y, scale_x, scale_y) -> torch.Tensor:
    ok = (norm_x > _DEGENERATE * scale_x) & (norm_y > _DEGENERATE * scale_y)
    denom = (norm_x * norm_y).clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(ok, hsic / denom, torch.nan)


def _sq(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=(-2, -1))


def _cka_centred(
    xc: torch.Tensor, yc: torch.Tensor, scale_x: torch.Tensor, scale_y: torch.Tensor
) -> torch.Tensor:
    """Batched linear CKA of centred `[..., n, d1]`, `[..., n, d2]` -> `[...]`.

    `scale_*`: squared Frobenius norms of the raw inputs (for the degeneracy test).
    """
    n, d1, d2 = xc.shape[-2], xc.shape[-1], yc.shape[-1]
    xt, yt = xc.transpose(-1, -2), yc.transpose(-1, -2)
    if n * n * (d1 + d2) < n * (d1 * d2 + d1 * d1 + d2 * d2):  # sample space is cheaper
        k, l_ = xc @ xt, yc @ yt
        hsic = (k * l_).sum(dim=(-2, -1))
        norm_x, norm_y = torch.linalg.matrix_norm(k), torch.linalg.matrix_norm(l_)
        return _ratio(hsic, norm_x, norm_y, scale_x, scale_y)
    hsic = torch.linalg.matrix_norm(yt @ xc) ** 2
    norm_x, norm_y = torch.linalg.matrix_norm(xt @ xc), torch.linalg.matrix_norm(yt @ yc)
    return _ratio(hsic, norm_x, norm_y, scale_x, scale_y)


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=-2, keepdim=True)


def linear_cka(X: Any, Y: Any) -> float:
    """Linear CKA of `X [n, d1]` and `Y [n, d2]` (same rows, in the same order): a float."""
    x, y = as_f64(X), as_f64(Y)
    check_rows(x, y, 2)
    if x.dim() != 2:
        raise ValueError(f"linear_cka takes 2-D inputs, got {tuple(x.shape)}; see cka_per_layer")
    return float(_cka_centred(_centre(x), _centre(y), _sq(x), _sq(y)))


def cka_per_layer(A: Any, B: Any, *, max_bytes: int = 1 << 28) -> np.ndarray:
    """Linear CKA layer by layer of two stacks `[L+1, n, d1]`, `[L+1, n, d2]` -> `[L+1]`.

    Layers are batched into one float64 computation as long as a group's centred copies fit in
    `max_bytes`; a larger stack goes a few layers at a time.
    """
    if isinstance(A, torch.Tensor) or isinstance(B, torch.Tensor):
        a_dims = tuple(A.shape)
        b_dims = tuple(B.shape)
    else:
        A, B = np.asarray(A), np.asarray(B)
        a_dims, b_dims = A.shape, B.shape
    if len(a_dims) != 3 or len(b_dims) != 3 or a_dims[:2] != b_dims[:2]:
        raise ValueError(
            f"expected stacks [L+1, n, d] with equal L+1 and n, got {a_dims}, {b_dims}"
        )
    n_layers, n_rows = a_dims[0], a_dims[1]
    per_layer = 8 * n_rows * (a_dims[2] + b_dims[2])
    step = max(1, max_bytes // max(per_layer, 1))
    out = np.empty(n_layers, dtype=np.float64)
    for start in range(0, n_layers, step):
        x, y = as_f64(A[start : start + step]), as_f64(B[start : start + step])
        cka = _cka_centred(_centre(x), _centre(y), _sq(x), _sq(y))
        out[start : start + step] = cka.cpu().numpy()
    return out


class StreamingCKA(CrossMoments):
    """Linear CKA accumulated over chunks of rows: equal to `linear_cka` on the concatenation.

    `update(X_chunk, Y_chunk)` takes `[n_i, d1]`, `[n_i, d2]` (or stacks `[L+1, n_i, d]`, giving
    one CKA per layer); memory O(d1² + d2² + d1·d2) per layer, whatever the number of rows
    (`repsim.CrossMoments`, which also gives the Procrustes distance and SVCCA).
    """

    def result(self) -> float | np.ndarray:
        """CKA of all rows seen: a float, or `[L+1]` for stacked input."""
        cka = self.centred().cka().cpu().numpy()
        return float(cka) if cka.ndim == 0 else cka
