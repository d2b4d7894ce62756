"""The linear probe's solver: standardised softmax regressions for every layer (and for several
label sets, e.g. a task and its control) fitted at once by one batched L-BFGS.

Each (layer, target) pair is its own problem, with exactly scikit-learn's
`LogisticRegression(C=C)` (lbfgs) objective on standardised features:

    minimise over W, b:  (1/N) * sum_i CE(softmax(x_i W + b), y_i) + 1/(2 C N) * ||W||_F^2

(the intercept is not penalised; two classes use one weight vector, the binomial model, as
scikit-learn does). That is sklearn's `sum CE + 1/(2C) ||W||^2` divided by N, the scaling its
lbfgs solver uses, so the tolerance `tol` on the max |gradient| in W's coordinates means the same
in both. Each problem keeps its own curvature history, step size and convergence test, so a hard
layer never holds back an easy one.

Why it is fast. An evaluation's cost is two passes over the features, which are read once for
all targets of a layer: a control task costs a few more columns, not a second fit. And the
solver runs in preconditioned coordinates (`preconditioner`): transformer features are strongly
correlated, and whitening them by their covariance reaches the same optimum in fewer
iterations (bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

__all__ = [
    "as_float32",
    "fit_layers_linear",
    "fit_softmax",
    "log_proba_softmax",
    "penalty_ridge",
    "preconditioner",
    "predict_softmax",
    "second_moments",
    "softmax_curvature",
    "standardise_",
    "torch_threads",
    "whitening",
]

_DEFAULT_MAX_BYTES = 2 * 1024**3
#: the logit offset that takes an excluded class out of a softmax: finite, so that a zero
#: one-hot entry times its log-probability is 0, not NaN
_EXCLUDED = 1e30


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with `n` torch intra-op threads (None: leave the setting alone)."""
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def standardise_(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """In place over dim -2 (examples): returns (mean, scale), both [..., 1, H]."""
    mean = x.mean(dim=-2, keepdim=True)
    x.sub_(mean)
    scale = x.square().mean(dim=-2, keepdim=True).sqrt_()
    scale = torch.where(scale > 1e-12 * (1.0 + mean.abs()), scale, torch.ones_like(scale))
    x.div_(scale)
    return mean, scale


def as_float32(x, device: str | torch.device) -> torch.Tensor:
    """A float32 tensor COPY of an array slice (float16 memmaps included): callers standardise
    it in place, which must never touch the caller's array. torch converts float16 about twice
    as fast as numpy."""
    a = np.ascontiguousarray(x)
    with warnings.catch_warnings():  # a read-only memmap: only read, by the copy below
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        t = torch.from_numpy(a)
    return t.to(device=device, dtype=torch.float32, copy=True)


def _lbfgs_direction(g, hist, gamma, active):
    """The two-loop L-BFGS direction per row, masked to the active rows: (d, g . d)."""
    q = g.clone()
    alphas = []
    for s, y, rho in reversed(hist):
        a = rho * (s * q).sum(1)
        alphas.append(a)
        q -= a.unsqueeze(1) * y
    r = gamma.unsqueeze(1) * q
    for (s, y, rho), a in zip(hist, reversed(alphas), strict=True):
        beta = rho * (y * r).sum(1)
        r += s * (a - beta).unsqueeze(1)
    d = -r
    gd = (g * d).sum(1)
    bad = gd >= 0  # not a descent direction (numerical trouble): fall back to -g
    if bool(bad.any()):
        d = torch.where(bad.unsqueeze(1), -g, d)
        gd = (g * d).sum(1)
    return d * active.unsqueeze(1), gd


def _line_search(fg, rows, theta, f, g, gmax, d, gd, active):
    """Backtracking (Armijo) per row from step 1, halving up to 40 times. Returns the accepted
    (theta, f, g, gmax), the old values where no step was accepted, and `done` (accepted or
    inactive) per row."""
    step = torch.ones(len(rows), dtype=theta.dtype, device=theta.device)
    done = ~active
    new_theta, new_f, new_g, new_gmax = theta.clone(), f.clone(), g.clone(), gmax.clone()
    for _ls in range(40):
        trial = theta + step.unsqueeze(1) * d
        tf, tg, tgmax = fg(trial, rows)
        # a step must lower f measurably: near the optimum of a tol below float32's resolution
        # f stops changing, and accepting equal values would spin to max_iter
        ok = (tf <= f + 1e-4 * step * gd) & (tf < f) & torch.isfinite(tf) & ~done
        if bool(ok.any()):
            new_theta = torch.where(ok.unsqueeze(1), trial, new_theta)
            new_f = torch.where(ok, tf, new_f)
            new_g = torch.where(ok.unsqueeze(1), tg, new_g)
            new_gmax = torch.where(ok, tgmax, new_gmax)
        done = done | ok
        if bool(done.all()):
            break
        step = torch.where(done, step, step * 0.5)
    return new_theta, new_f, new_g, new_gmax, done


def _update_history(hist, gamma, s, y):
    """Append the curvature pair (s, y), keeping 10 as scipy's default; a pair with too little
    curvature gets rho = 0 (no effect on the direction) and leaves that row's gamma alone."""
    sy = (s * y).sum(1)
    valid = sy > 1e-10 * (y * y).sum(1).clamp_min(1e-30)
    rho = torch.where(valid, 1.0 / sy.clamp_min(1e-30), torch.zeros_like(sy))
    hist = [*hist[-9:], (s, y, rho)]
    gamma = torch.where(valid, sy / (y * y).sum(1).clamp_min(1e-30), gamma)
    return hist, gamma


def _batched_lbfgs(
    fg, theta, *, max_iter: int, tol: float, group: int = 1, unit_step: bool = False
):
    """Minimise R independent smooth objectives at once.

    `fg(theta [R', D], rows [R']) -> (f [R'], g [R', D], gmax [R'])` evaluates the objectives of
    the original rows `rows`; `gmax` is the convergence measure (the max |gradient| in the
    problem's own coordinates, which may differ from those `theta` lives in). Rows come in
    consecutive groups of `group` that `fg` evaluates together, and `rows` always holds whole
    groups. Two-loop L-BFGS per row with a backtracking (Armijo) line search per row; a row stops
    when its gmax <= tol, when its line search fails, or at max_iter. Once at most half of the
    groups still run, finished groups leave the batch, so the total cost follows the sum of the
    groups' iteration counts, not the slowest group's times their number. `unit_step`: start at
    step 1 (a preconditioned problem), not at 1 / |g|_1. Returns (theta [R, D], n_iter [R]).
    """
    out = theta.clone()
    n_iter = torch.zeros(theta.shape[0], dtype=torch.long, device=theta.device)
    rows = torch.arange(theta.shape[0], device=theta.device)
    f, g, gmax = fg(theta, rows)
    active = gmax > tol
    hist: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, rho)
    if unit_step:
        gamma = torch.ones(len(rows), dtype=theta.dtype, device=theta.device)
    else:
        gamma = torch.clamp(1.0 / g.abs().sum(dim=1).clamp_min(1e-12), max=1.0)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        running = active.view(-1, group).any(dim=1)
        if int(running.sum()) <= len(running) // 2:  # compact: keep only the running groups
            keep = running.repeat_interleave(group)
            rows, theta, f, g, gmax, gamma, active = (
                t[keep] for t in (rows, theta, f, g, gmax, gamma, active)
            )
            hist = [(s[keep], y[keep], rho[keep]) for s, y, rho in hist]
        d, gd = _lbfgs_direction(g, hist, gamma, active)
        new_theta, new_f, new_g, new_gmax, done = _line_search(
            fg, rows, theta, f, g, gmax, d, gd, active
        )
        failed = active & ~done  # no acceptable step: as good as this row gets
        hist, gamma = _update_history(hist, gamma, new_theta - theta, new_g - g)
        n_iter[rows] += active.long()
        theta, f, g, gmax = new_theta, new_f, new_g, new_gmax
        out[rows] = theta
        active = active & ~failed & (gmax > tol)
    return out, n_iter


def preconditioner(
    x: torch.Tensor, max_rows: int = 2048, ridge: float = 1e-3
) -> torch.Tensor | None:
    """[L, H, H] lower-triangular M with M (Sigma + ridge I) M^T = I per layer, or None.

    For a softmax of curvature c at zero, the weights' Hessian there is about c * Sigma + l2 * I
    (Sigma: the standardised features' second moments), so solving for v with
    w = v @ M / sqrt(c) is solving a problem whose Hessian starts near the identity: the same
    optimum, fewer iterations; `penalty_ridge` gives the ridge l2 / c adds. Sigma only shapes
    the path, so it comes from at most `max_rows` evenly spaced examples. None (plain
    gradients) when N < 4H: there M's products would cost as much as the features' own, and an
    evaluation is cheap anyway.
    """
    n, h = x.shape[1], x.shape[2]
    if n < 4 * h:
        return None
    return whitening(second_moments(x, max_rows), ridge)


def penalty_ridge(C: float, n: int, n_classes: int) -> float:
    """The preconditioner's ridge for the penalty of `C` on `n` examples: 1e-3 + l2 / c. A
    strong penalty (small C) dominates the Hessian; whitened without it, the Hessian in the
    solver's coordinates is near I + Sigma^-1 l2 / c, badly conditioned (MiniLM's 3363 NCBI
    demo words: 99 iterations a layer instead of 7 at C = 0.001, 51 instead of 12 at C = 0.01,
    the same 30 at C = 1)."""
    return 1e-3 + 1.0 / (C * n * softmax_curvature(n_classes))


def second_moments(x: torch.Tensor, max_rows: int = 2048) -> torch.Tensor:
    """[L, H, H]: the second moments of x [L, N, H] from at most max(`max_rows`, 4H) evenly
    spaced examples (they only shape a solver's path)."""
    n, h = x.shape[1], x.shape[2]
    xs = x[:, :: max(1, n // max(max_rows, 4 * h))]
    return torch.bmm(xs.transpose(1, 2), xs) / xs.shape[1]


def whitening(sigma: torch.Tensor, ridge: float) -> torch.Tensor:
    """[L, H, H] lower-triangular M with M (sigma + ridge I) M^T = I per layer; the identity
    for a layer where that is not positive definite in float32 (plain gradients)."""
    eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device).expand_as(sigma)
    # one thread: LAPACK's multi-threaded Cholesky rounds differently with the thread count,
    # and a probe table must not depend on how many cores its job got (local vs SLURM)
    with torch_threads(1):
        chol, info = torch.linalg.cholesky_ex(sigma + ridge * eye)
        bad = (info != 0)[:, None, None]
        return torch.linalg.solve_triangular(torch.where(bad, eye, chol), eye, upper=False)


def _layer_selector(x: torch.Tensor, m: torch.Tensor | None):
    """`layers(idx) -> (x[idx], m[idx])`, caching the latest subset: once layers converge the
    solver keeps asking for the same remaining ones, and copying them each evaluation would
    cost a pass over the features."""
    subset: dict[tuple[int, ...], tuple] = {}  # the layers still being fitted

    def layers(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if len(idx) == x.shape[0]:
            return x, m
        key = tuple(idx.tolist())
        if key not in subset:
            subset.clear()
            subset[key] = (x.index_select(0, idx), None if m is None else m.index_select(0, idx))
        return subset[key]

    return layers


def _class_offsets(exclude: torch.Tensor, binary: bool, dtype: torch.dtype) -> torch.Tensor:
    """[T, P] logit offsets that give each target's excluded classes probability 0: -big on a
    multiclass logit; a binary logit (class 1 vs 0) is pinned to the class left."""
    big = exclude.to(dtype) * _EXCLUDED
    return big[:, :1] - big[:, 1:] if binary else -big


def _softmax_objective(x, ys, n_classes: int, l2: float, m, b_scale: float, offset=None):
    """`fg(theta, rows)` for `_batched_lbfgs`: the penalised mean cross-entropy of every
    (layer, target) row, with gradients in the solver's (preconditioned) coordinates and gmax
    in W's, so that `tol` means what it does in scikit-learn. `offset` [T, P]: fixed logit
    offsets (`_class_offsets`)."""
    _, n, h = x.shape
    n_targets = ys.shape[0]
    binary = n_classes == 2
    p = 1 if binary else n_classes
    tp = n_targets * p
    onehot = torch.nn.functional.one_hot(ys.T, n_classes).to(x.dtype)  # [N, T, K]
    target = onehot[..., 1:] if binary else onehot
    layers = _layer_selector(x, m)

    def fg(theta, rows):
        r = len(rows)
        g = r // n_targets
        xr, mr = layers(rows[::n_targets] // n_targets)
        v = theta[:, : p * h].reshape(g, tp, h)
        w = v if mr is None else torch.bmm(v, mr)  # [G, T*P, H]
        b = theta[:, p * h :].reshape(g, tp) * b_scale
        # x @ w^T with w stored [T*P, H]: on CPU several times faster than x @ [H, T*P]
        z = (torch.bmm(xr, w.transpose(1, 2)) + b.unsqueeze(1)).view(g, n, n_targets, p)
        if offset is not None:
            z = z + offset
        if binary:
            z = torch.cat([torch.zeros_like(z), z], dim=-1)
        logp = torch.log_softmax(z, dim=-1)  # [G, N, T, K]
        ce = -(logp * onehot).sum(-1).mean(1)  # [G, T]
        f = ce.reshape(r) + 0.5 * l2 * w.reshape(r, p * h).square().sum(1)
        resid = logp.exp()
        resid = ((resid[..., 1:] if binary else resid) - target).reshape(g, n, tp)
        # the [T*P, N] @ [N, H] product is most of an evaluation's cost, and on CPU its kernel
        # is 2-3x slower at 2 or 3 rows than at 4: pad with zero rows
        padded = torch.nn.functional.pad(resid, (0, -tp % 4)) if tp > 1 else resid
        gw = torch.bmm(padded.transpose(1, 2), xr)[:, :tp] / n + l2 * w  # [G, T*P, H]
        gb = resid.mean(1)  # [G, T*P]
        gmax = torch.maximum(gw.reshape(r, p * h).abs().amax(1), gb.reshape(r, p).abs().amax(1))
        gv = gw if mr is None else torch.bmm(gw, mr.transpose(1, 2))
        return f, torch.cat([gv.reshape(r, p * h), gb.reshape(r, p) * b_scale], dim=1), gmax

    return fg


def softmax_curvature(n_classes: int) -> float:
    """The curvature of `n_classes`' softmax cross-entropy at zero logits (one logit for two
    classes): what `fit_softmax` scales its preconditioner by."""
    return 0.25 if n_classes == 2 else (1.0 / n_classes) * (1.0 - 1.0 / n_classes)


def fit_softmax(
    x: torch.Tensor,
    ys: torch.Tensor,
    n_classes: int,
    *,
    C: float,
    max_iter: int,
    tol: float,
    precondition: torch.Tensor | None = None,
    exclude: torch.Tensor | None = None,
):
    """Fit every (layer, target) problem of standardised x [L, N, H] float32 and targets
    ys [T, N] (class indices 0..K-1, K = `n_classes` for all of them).

    `precondition`: `preconditioner(x)` (None: plain gradients). `exclude` [T, K] bool: classes
    a target's model leaves out (probability 0; weights 0), e.g. those absent from ys, whose
    unpenalised intercept would otherwise run to -inf: the rest is scikit-learn's problem on
    the classes present. Returns W [L, T, P, H], b [L, T, P] (P = 1 for two classes, else K)
    and n_iter [L, T].
    """
    n_layers, n, h = x.shape
    n_targets = ys.shape[0]
    binary = n_classes == 2
    p = 1 if binary else n_classes
    tp = n_targets * p
    l2 = 1.0 / (C * n)
    curvature = softmax_curvature(n_classes)
    m = None if precondition is None else precondition * curvature**-0.5  # w = v @ m
    b_scale = 1.0 if m is None else curvature**-0.5  # b = b_scale * v_b: its curvature is c
    offset = None if exclude is None else _class_offsets(exclude, binary, x.dtype)
    fg = _softmax_objective(x, ys, n_classes, l2, m, b_scale, offset)
    theta0 = torch.zeros(n_layers * n_targets, p * h + p, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        theta, n_iter = _batched_lbfgs(
            fg, theta0, max_iter=max_iter, tol=tol, group=n_targets, unit_step=m is not None
        )
        v = theta[:, : p * h].reshape(n_layers, tp, h)
        w = v if m is None else torch.bmm(v, m)
    return (
        w.view(n_layers, n_targets, p, h),
        theta[:, p * h :].reshape(n_layers, n_targets, p) * b_scale,
        n_iter.view(n_layers, n_targets),
    )


def predict_softmax(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Class indices [T, L, M] for standardised x [L, M, H] and `fit_softmax`'s W, b."""
    n_layers, n_targets, p, h = w.shape
    z = torch.bmm(x, w.reshape(n_layers, n_targets * p, h).transpose(1, 2))
    z = (z + b.reshape(n_layers, 1, n_targets * p)).view(n_layers, -1, n_targets, p)
    pred = (z[..., 0] > 0).long() if p == 1 else z.argmax(-1)  # [L, M, T]
    return pred.permute(2, 0, 1)


def log_proba_softmax(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Log-probabilities [L, M, T, K] of every class for standardised x [L, M, H] under
    `fit_softmax`'s W, b (and the `exclude` it was fitted with)."""
    n_layers, n_targets, p, h = w.shape
    z = torch.bmm(x, w.reshape(n_layers, n_targets * p, h).transpose(1, 2))
    z = (z + b.reshape(n_layers, 1, n_targets * p)).view(n_layers, -1, n_targets, p)
    if exclude is not None:
        z = z + _class_offsets(exclude, p == 1, z.dtype)
    if p == 1:
        z = torch.cat([torch.zeros_like(z), z], dim=-1)
    return torch.log_softmax(z, dim=-1)


def _layer_chunks(n_layers: int, bytes_per_layer: int, max_bytes: int) -> list[range]:
    per = max(1, int(max_bytes // max(bytes_per_layer, 1)))
    return [range(lo, min(lo + per, n_layers)) for lo in range(0, n_layers, per)]


def fit_layers_linear(
    X,
    y,
    X_eval,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    device: str = "cpu",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    num_threads: int | None = None,
) -> np.ndarray:
    """Fit one standardised softmax regression per layer, all layers at once; predict X_eval.

    X [L, N, H] and X_eval [L, M, H] may be float16/float32 arrays or memmaps; layers are loaded
    in chunks of at most `max_bytes` of float32. `y` [N] gives predicted labels [L, M] (y's
    values); `y` [T, N], several label sets for the same examples (a task and its control),
    gives [T, L, M]: targets with as many classes share every pass over the features.
    `num_threads`: torch threads for the fit (None: torch's current setting).
    """
    with torch_threads(num_threads):
        return _fit_layers_linear(X, y, X_eval, C, max_iter, tol, device, max_bytes)


def _fit_layers_linear(X, y, X_eval, C, max_iter, tol, device, max_bytes) -> np.ndarray:
    if (
        X.ndim != 3
        or X_eval.ndim != 3
        or X.shape[0] != X_eval.shape[0]
        or X.shape[2] != X_eval.shape[2]
    ):
        raise ValueError(f"X {X.shape} and X_eval {X_eval.shape} must be [L, N, H] and [L, M, H]")
    y = np.asarray(y)
    single = y.ndim == 1
    ys = y[None] if single else y
    if ys.ndim != 2 or ys.shape[1] != X.shape[1]:
        raise ValueError(f"y has shape {y.shape}, expected ({X.shape[1]},) or (T, {X.shape[1]})")
    n_layers, n, h = X.shape
    m = X_eval.shape[1]
    encoded = [np.unique(row, return_inverse=True) for row in ys]  # (classes, indices)
    try:
        dtype = np.result_type(*(classes for classes, _ in encoded))
    except TypeError:  # label sets of unrelated types (strings and numbers)
        dtype = np.dtype(object)
    out = np.empty((len(ys), n_layers, m), dtype=dtype)
    groups: dict[int, list[int]] = {}  # targets by class count: one solve per count
    for t, (classes, _) in enumerate(encoded):
        if len(classes) == 1:
            out[t] = classes[0]
        else:
            groups.setdefault(len(classes), []).append(t)
    if groups:
        for chunk in _layer_chunks(n_layers, (3 * n // 2 + m) * h * 4, max_bytes):
            lo, hi = chunk.start, chunk.stop
            x = as_float32(X[lo:hi], device)
            mean, scale = standardise_(x)
            fits = {}
            for k, targets in groups.items():
                idx = np.stack([encoded[t][1] for t in targets]).astype(np.int64)
                yt = torch.from_numpy(idx).to(device)
                pre = preconditioner(x, ridge=penalty_ridge(C, n, k))
                w, b, _ = fit_softmax(x, yt, k, C=C, max_iter=max_iter, tol=tol, precondition=pre)
                fits[k] = (w, b)
            del x
            xe = as_float32(X_eval[lo:hi], device).sub_(mean).div_(scale)
            with torch.no_grad():
                for k, targets in groups.items():
                    pred = predict_softmax(xe, *fits[k]).cpu().numpy()  # [T_k, chunk, M]
                    for row, t in enumerate(targets):
                        out[t, lo:hi] = encoded[t][0][pred[row]]
    return out[0] if single else out
