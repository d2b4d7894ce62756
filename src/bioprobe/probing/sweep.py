"""Probe-complexity sweeps (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control
Tasks"): the linear probe's task and control scores along two controls of its complexity, so
that a probe can be chosen that learns the task from the representation rather than memorising
word identities (which the control task rewards just as much).

- `C`: the inverse L2 regularisation of the linear probe (scikit-learn's C; the objective of
  `softmax.fit_softmax`), at full rank: `fit_path` solves the Cs in increasing order, each from
  the last optimum, each preconditioned for its own penalty (`softmax.penalty_ridge`).
- `rank`: the rank r of the probe's weight matrix, W = A B with A [P, r] and B [r, H], at the
  linear probe's own C (`probe.linear.C`).

The rank-constrained probe solves the constrained problem itself (the penalised cross-entropy
over W = A B), as Hewitt & Liang's rank-constrained probes do, rather than a convex surrogate: a
nuclear-norm penalty would be a second shrinkage knob next to C (it shrinks every direction
instead of bounding their number), so the two sweeps would measure one thing. The factored
problem is not convex, so its solution is made deterministic and near the convex one:
- at r >= P' (P' = K - 1 for K classes, 1 for two classes) it IS the linear probe, whose
  penalised optimum has rows summing to zero and so rank <= K - 1: solved as such;
- below, L-BFGS on (A, B, b), batched over layers and targets like the linear probe
  (`softmax._batched_lbfgs`), runs from four starts at once and keeps the best: the linear
  probe's best rank-r approximation in the solver's whitened coordinates (its truncated SVD
  there, which changes the logits over the fit data least); the same directions shrunk to 1 %
  of that size (A and B at 10 % each), from which the factors grow into the directions that
  pay most; and two seeded random directions of that size. On random problems every start
  alone sometimes stopped in a worse local optimum (by up to 0.07 in the objective), the best
  of the four once in 48 (by 0.004 above random-restart L-BFGS, on 150 near-separable
  examples); on MiniLM's JNLPBA words the random starts change 0.4 % of the rank-4
  predictions, at 3x the cost of the SVD starts alone. The tests check the result against
  random-restart optimisation.

Rows: `{"layer", "complexity", "setting", "target", "metric", "value"}`, target `task`,
`control` or `selectivity` (task − control of the same metric), the metrics of the linear
probe's rows (`probing.run`), on the score split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bioprobe.probing.rows import TARGETS, draw_keys
from bioprobe.probing.softmax import (
    _DEFAULT_MAX_BYTES,
    _batched_lbfgs,
    _layer_chunks,
    _softmax_objective,
    as_float32,
    penalty_ridge,
    predict_softmax,
    second_moments,
    softmax_curvature,
    standardise_,
    torch_threads,
    whitening,
)

if TYPE_CHECKING:
    from bioprobe.probing.run import ExtraScores, ProbeData

__all__ = [
    "fit_layers_sweep",
    "fit_low_rank",
    "fit_path",
    "full_rank",
    "penalised_preconditioner",
    "sweep_rows",
]

#: the third target of the rows: task − control of the same metric
SELECTIVITY = "selectivity"
#: the rank-constrained probe's starts (see the module docstring): the linear probe's top
#: singular directions at these fractions of their size in each factor, and random directions
#: (seeded) at the size of the last
_START_SCALES = (1.0, 0.1)
_RANDOM_STARTS = 2


def full_rank(n_classes: int) -> int:
    """The rank at and above which a rank-constrained probe is the linear probe: 1 for two
    classes (one logit), K - 1 for K (the penalised optimum's rows sum to zero)."""
    return 1 if n_classes == 2 else n_classes - 1


def fit_low_rank(
    x: torch.Tensor,
    ys: torch.Tensor,
    n_classes: int,
    rank: int,
    init: tuple[torch.Tensor, torch.Tensor],
    *,
    C: float,
    max_iter: int,
    tol: float,
    precondition: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit every (layer, target) problem of `softmax.fit_softmax` (standardised x [L, N, H],
    targets ys [T, N]) with W of rank <= `rank`, from `init` = fit_softmax's (W, b) at the same
    C and `precondition`. Returns W [L, T, P, H], b [L, T, P] (`predict_softmax` reads them)
    and n_iter [L, T] (summed over the starts); `tol` bounds the max |gradient| in the
    solver's coordinates of A, B, b."""
    n_layers, n, h = x.shape
    n_targets, n_starts = ys.shape[0], len(_START_SCALES) + _RANDOM_STARTS
    p = 1 if n_classes == 2 else n_classes
    r = min(rank, p)
    curvature = softmax_curvature(n_classes)
    m = None if precondition is None else precondition * curvature**-0.5  # w = v @ m
    b_scale = 1.0 if m is None else curvature**-0.5
    w0, b0 = init
    v0 = w0.reshape(n_layers, n_targets * p, h)
    if m is not None:  # the solver's coordinates: v = w @ m^-1
        v0 = torch.linalg.solve_triangular(m, v0, upper=False, left=False)
    a0, bm0 = _starts(v0.view(n_layers, n_targets, p, h), r)  # [L, S, T, P, r], [..., r, H]
    bias0 = (b0.reshape(n_layers, 1, n_targets, p) / b_scale).expand(-1, n_starts, -1, -1)
    theta0 = torch.cat(
        [t.reshape(n_layers * n_starts * n_targets, -1) for t in (a0, bm0, bias0)], dim=1
    )
    full = _softmax_objective(x, ys.repeat(n_starts, 1), n_classes, 1.0 / (C * n), m, b_scale)
    fg = _factored(full, p, r, h)
    group = n_starts * n_targets
    with torch.no_grad():
        theta, n_iter = _batched_lbfgs(
            fg, theta0, max_iter=max_iter, tol=tol, group=group, unit_step=m is not None
        )
        f = fg(theta, torch.arange(len(theta), device=x.device))[0]
        best = f.view(n_layers, n_starts, n_targets).argmin(1)  # [L, T]: the start kept
        rows = (torch.arange(n_layers, device=x.device)[:, None] * n_starts + best) * n_targets
        rows = (rows + torch.arange(n_targets, device=x.device)).flatten()
        a, bm, bias = _split(theta[rows], p, r, h)
        v = torch.bmm(a, bm).view(n_layers, n_targets * p, h)
        w = v if m is None else torch.bmm(v, m)
    return (
        w.view(n_layers, n_targets, p, h),
        bias.reshape(n_layers, n_targets, p) * b_scale,
        n_iter.view(n_layers, n_starts, n_targets).sum(1),
    )


def _starts(v: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The factors' starts [L, S, T, P, r] and [L, S, T, r, H] from the linear probe's v
    [L, T, P, H]: A = U_r S_r^1/2, B = S_r^1/2 V_r^T (balanced) at each of `_START_SCALES`, then
    `_RANDOM_STARTS` seeded Gaussian ones of the last one's norms. Each start is solved as a
    target of its own: a layer's rows share its feature passes."""
    u, s, vh = torch.linalg.svd(v.unsqueeze(1), full_matrices=False)
    scales = torch.tensor(_START_SCALES, dtype=v.dtype, device=v.device).view(1, -1, 1, 1)
    root = s[..., :r].sqrt() * scales  # [L, S, T, r]
    a, bm = u[..., :r] * root.unsqueeze(-2), root.unsqueeze(-1) * vh[..., :r, :]
    gen = torch.Generator(device=v.device).manual_seed(0)
    shape = (v.shape[0], _RANDOM_STARTS, v.shape[1])
    ra = torch.randn((*shape, v.shape[2], r), generator=gen, device=v.device, dtype=v.dtype)
    rb = torch.randn((*shape, r, v.shape[3]), generator=gen, device=v.device, dtype=v.dtype)

    def norm(t):
        return t.square().sum((-2, -1), keepdim=True).sqrt().clamp_min(1e-12)

    ra = ra / norm(ra) * norm(a[:, -1:])
    rb = rb / norm(rb) * norm(bm[:, -1:])
    return torch.cat([a, ra], dim=1), torch.cat([bm, rb], dim=1)


def _split(theta: torch.Tensor, p: int, r: int, h: int):
    """(A [R, P, r], B [R, r, H], b [R, P]) of the factored rows `theta` [R, P r + r H + P]."""
    rows = theta.shape[0]
    a = theta[:, : p * r].view(rows, p, r)
    bm = theta[:, p * r : p * r + r * h].view(rows, r, h)
    return a, bm, theta[:, p * r + r * h :]


def _factored(full, p: int, r: int, h: int):
    """`fg` over (A, B, b) from `full`, the `fg` over (v, b) of `_softmax_objective`: v = A B,
    so dA = dv B^T and dB = A^T dv. gmax is the max |gradient| in these coordinates."""

    def fg(theta, rows):
        a, bm, bias = _split(theta, p, r, h)
        v = torch.bmm(a, bm)
        f, g, _ = full(torch.cat([v.reshape(len(rows), p * h), bias], dim=1), rows)
        gv = g[:, : p * h].view(-1, p, h)
        ga = torch.bmm(gv, bm.transpose(1, 2))
        gb = torch.bmm(a.transpose(1, 2), gv)
        grad = torch.cat([ga.reshape(len(rows), -1), gb.reshape(len(rows), -1), g[:, p * h :]], 1)
        return f, grad, grad.abs().amax(1)

    return fg


def fit_layers_sweep(
    X,
    ys,
    X_eval,
    *,
    Cs: Sequence[float] = (),
    ranks: Sequence[int] = (),
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    device: str = "cpu",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    num_threads: int | None = None,
) -> dict[tuple[str, float], np.ndarray]:
    """Predictions [T, L, M] (ys's values) of X_eval [L, M, H] by the linear probes fitted on
    X [L, N, H] and label sets ys [T, N] (a task and its control) at every setting of the
    sweep: `{("C", c): ...}` for c in `Cs` (full rank) and `{("rank", r): ...}` for r in `ranks`
    (at `C`). Layers are loaded in chunks of at most `max_bytes` of float32, as
    `fit_layers_linear` does, and every setting of a chunk reuses its standardised features."""
    ys = np.asarray(ys)
    if X.ndim != 3 or X_eval.ndim != 3 or ys.ndim != 2 or ys.shape[1] != X.shape[1]:
        raise ValueError(
            f"X {X.shape}, X_eval {X_eval.shape}, ys {ys.shape}: [L,N,H] [L,M,H] [T,N]"
        )
    n_layers, n, h = X.shape
    settings = [("C", float(c)) for c in Cs] + [("rank", int(r)) for r in ranks]
    encoded = [np.unique(row, return_inverse=True) for row in ys]  # (classes, indices)
    out = {s: np.empty((len(ys), n_layers, X_eval.shape[1]), dtype=ys.dtype) for s in settings}
    groups: dict[int, list[int]] = {}  # targets by class count: one solve per count
    for t, (classes, _) in enumerate(encoded):
        if len(classes) == 1:
            for pred in out.values():
                pred[t] = classes[0]
        else:
            groups.setdefault(len(classes), []).append(t)
    solve = {"C": C, "max_iter": max_iter, "tol": tol}
    with torch_threads(num_threads):
        for chunk in _layer_chunks(n_layers, (3 * n // 2 + X_eval.shape[1]) * h * 4, max_bytes):
            x = as_float32(X[chunk.start : chunk.stop], device)
            mean, scale = standardise_(x)
            # preconditioned as fit_softmax is where N >= 4H, with the penalty in the whitening
            moments = second_moments(x) if x.shape[1] >= 4 * h else None
            xe = as_float32(X_eval[chunk.start : chunk.stop], device).sub_(mean).div_(scale)
            for k, targets in groups.items():
                yt = torch.from_numpy(np.stack([encoded[t][1] for t in targets])).to(device)
                for setting, pred in _chunk_sweep(x, yt, k, xe, moments, Cs, ranks, solve).items():
                    for row, t in enumerate(targets):
                        out[setting][t, chunk.start : chunk.stop] = encoded[t][0][pred[row]]
    return out


def _chunk_sweep(x, yt, k, xe, moments, Cs, ranks, solve) -> dict[tuple[str, float], np.ndarray]:
    """Predicted class indices [T_k, chunk, M] per setting of one chunk of layers and one class
    count `k`; the full-rank fit at `solve["C"]` is shared by the C and rank sweeps."""
    path = sorted({float(c) for c in Cs} | ({float(solve["C"])} if ranks else set()))
    fits = fit_path(x, yt, k, path, max_iter=solve["max_iter"], tol=solve["tol"], moments=moments)
    pre = penalised_preconditioner(moments, solve["C"], x.shape[1], k)
    out = {}
    with torch.no_grad():
        for c in Cs:
            out["C", float(c)] = predict_softmax(xe, *fits[float(c)]).cpu().numpy()
        for r in ranks:
            w, b = fits[float(solve["C"])]
            if r < full_rank(k):
                w, b, _ = fit_low_rank(x, yt, k, int(r), (w, b), precondition=pre, **solve)
            out["rank", int(r)] = predict_softmax(xe, w, b).cpu().numpy()
    return out


def penalised_preconditioner(
    moments: torch.Tensor | None, C: float, n: int, n_classes: int
) -> torch.Tensor | None:
    """`softmax.preconditioner` for the penalty of `C` (`softmax.penalty_ridge`) from the
    features' second moments `moments` [L, H, H], computed once for every C; None (plain
    gradients) without moments."""
    return None if moments is None else whitening(moments, penalty_ridge(C, n, n_classes))


def fit_path(
    x: torch.Tensor,
    ys: torch.Tensor,
    n_classes: int,
    Cs: Sequence[float],
    *,
    max_iter: int,
    tol: float,
    moments: torch.Tensor | None = None,
) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """`softmax.fit_softmax`'s (W, b) at each of `Cs` (the same objective and convergence
    test), preconditioned for each C (`penalised_preconditioner` of `moments`; None: plain
    gradients) and solved along the regularisation path: in increasing C, each solve starts
    from the last one's optimum."""
    n_layers, n, h = x.shape
    n_targets = ys.shape[0]
    p = 1 if n_classes == 2 else n_classes
    curvature = softmax_curvature(n_classes)
    b_scale = 1.0 if moments is None else curvature**-0.5
    w = torch.zeros(n_layers, n_targets * p, h, dtype=x.dtype, device=x.device)
    b = torch.zeros(n_layers * n_targets, p, dtype=x.dtype, device=x.device)
    fits = {}
    with torch.no_grad():
        for c in sorted(Cs):
            m = penalised_preconditioner(moments, c, n, n_classes)
            m = None if m is None else m * curvature**-0.5  # w = v @ m
            # the last optimum in this C's coordinates: v = w @ m^-1
            v = w if m is None else torch.linalg.solve_triangular(m, w, upper=False, left=False)
            theta = torch.cat([v.reshape(n_layers * n_targets, p * h), b / b_scale], dim=1)
            fg = _softmax_objective(x, ys, n_classes, 1.0 / (c * n), m, b_scale)
            theta, _ = _batched_lbfgs(
                fg, theta, max_iter=max_iter, tol=tol, group=n_targets, unit_step=m is not None
            )
            v = theta[:, : p * h].reshape(n_layers, n_targets * p, h)
            w = v if m is None else torch.bmm(v, m)
            b = theta[:, p * h :] * b_scale
            fits[c] = (w.view(n_layers, n_targets, p, h), b.view(n_layers, n_targets, p))
    return fits


def sweep_rows(
    train: ProbeData,
    test: ProbeData,
    *,
    Cs: Sequence[float],
    ranks: Sequence[int],
    hyper: Mapping[str, Any] | None = None,
    label_mode: str = "type",
    seed: int = 0,
    num_threads: int | None = None,
    extra_scores: ExtraScores | None = None,
    control_draws: int = 1,
) -> list[dict]:
    """Tidy rows of the sweep: the linear probe (`hyper`: its C, max_iter, tol) fitted on
    `train` for the task and its control task (the mean over `control_draws` draws), scored on
    `test`, at every setting, per layer: `{"layer", "complexity", "setting", "target",
    "metric", "value"}` (see the module)."""
    from bioprobe.probing.run import _is_bio, _layer_scores, target_labels

    names, labels = target_labels(train, test, TARGETS, label_mode, seed, control_draws)
    keys = draw_keys(TARGETS, labels)
    preds = fit_layers_sweep(
        train.features,
        np.stack([labels[k][0] for k in keys]),
        test.features,
        Cs=Cs,
        ranks=ranks,
        num_threads=num_threads,
        **{k: v for k, v in (hyper or {}).items() if k in ("C", "max_iter", "tol")},
    )
    bio = train.is_sequence and _is_bio(names)
    rows = []
    for (complexity, setting), pred in preds.items():
        per_target = dict(zip(keys, pred, strict=True))
        for layer in range(pred.shape[1]):
            scores, _ = _layer_scores(
                layer, TARGETS, labels, per_target, names, test.sentence_lengths, bio, extra_scores
            )
            task, control = scores["task"], scores["control"]
            scores = {**scores, SELECTIVITY: {m: task[m] - control[m] for m in task}}
            rows += [
                {
                    "layer": layer,
                    "complexity": complexity,
                    "setting": float(setting),
                    "target": target,
                    "metric": metric,
                    "value": float(value),
                }
                for target, values in scores.items()
                for metric, value in values.items()
            ]
    return rows
