"""Probe estimators (scikit-learn style) and the vectorised multi-layer logistic regression.

Every probe: `__init__` stores hyper-parameters only, `fit` returns `self`, learned attributes end
in `_`, randomness comes from `random_state`. Inputs are standardised with the fit set's mean and
standard deviation (zero-variance features keep scale 1, as `StandardScaler` does).

`fit_layers_linear` fits one standardised softmax regression per layer, all layers at once: a
batched L-BFGS over a `[L, C, H]` weight tensor, with each layer keeping its own curvature
history, step size and convergence test, so a hard layer never holds back an easy one and each
layer's optimum is exactly the one scikit-learn's `LogisticRegression(C=C)` (lbfgs) finds:

    minimise over W, b:  (1/N) * sum_i CE(softmax(x_i W + b), y_i) + 1/(2 C N) * ||W||_F^2

(the intercept is not penalised; two classes use one weight vector, the binomial model, as
scikit-learn does). That is sklearn's `sum CE + 1/(2C) ||W||^2` divided by N, the scaling its
lbfgs solver uses, so the gradient tolerance `tol` means the same in both.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from bioprobe.probing.crf import LinearChainCRF

__all__ = [
    "PROBE_KINDS",
    "BiLSTMCRFProbe",
    "LinearProbe",
    "MLPProbe",
    "SVCProbe",
    "fit_layers_linear",
    "make_probe",
]

_DEFAULT_MAX_BYTES = 2 * 1024**3


# ---------------------------------------------------------------------------------------------
# standardisation and the batched softmax regression
# ---------------------------------------------------------------------------------------------


def _standardise_(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """In place over dim -2 (examples): returns (mean, scale), both [..., 1, H]."""
    mean = x.mean(dim=-2, keepdim=True)
    x.sub_(mean)
    scale = x.square().mean(dim=-2, keepdim=True).sqrt_()
    scale = torch.where(scale > 1e-12 * (1.0 + mean.abs()), scale, torch.ones_like(scale))
    x.div_(scale)
    return mean, scale


def _as_float32(x, device: str | torch.device) -> torch.Tensor:
    """A float32 tensor COPY of an array slice (float16 memmaps included): callers standardise
    it in place, which must never touch the caller's array."""
    return torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True)).to(device)


def _logits(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, binary: bool) -> torch.Tensor:
    """x [L, N, H], w [L, P, H], b [L, P] -> logits [L, N, K] (K = P, or 2 for binary P = 1)."""
    # x @ w^T with w stored [P, H]: on CPU several times faster than x @ [H, P] for small P
    z = torch.bmm(x, w.transpose(1, 2)) + b.unsqueeze(1)  # [L, N, P]
    return torch.cat([torch.zeros_like(z), z], dim=-1) if binary else z


def _batched_lbfgs(fg, theta, *, max_iter: int, tol: float, history: int = 10):
    """Minimise L independent smooth objectives at once.

    `fg(theta [R, D], rows [R]) -> (f [R], g [R, D])` evaluates the objectives of the original
    rows `rows`. Two-loop L-BFGS per row with a backtracking (Armijo) line search per row; a
    row stops when its max |gradient| <= tol, when its line search fails, or at max_iter. Once
    at most half of the rows still run, the rest are dropped from the batch, so the total cost
    follows the sum of the rows' iteration counts, not the slowest row times L.
    Returns (theta [L, D], n_iter [L]).
    """
    out = theta.clone()
    n_iter = torch.zeros(theta.shape[0], dtype=torch.long, device=theta.device)
    rows = torch.arange(theta.shape[0], device=theta.device)
    f, g = fg(theta, rows)
    active = g.abs().amax(dim=1) > tol
    hist: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, rho)
    gamma = torch.clamp(1.0 / g.abs().sum(dim=1).clamp_min(1e-12), max=1.0)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        if int(active.sum()) <= len(rows) // 2:  # compact: keep only the running rows
            rows, theta, f, g, gamma = (
                rows[active],
                theta[active],
                f[active],
                g[active],
                gamma[active],
            )
            hist = [(s[active], y[active], rho[active]) for s, y, rho in hist]
            active = active[active]
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
        d = d * active.unsqueeze(1)
        step = torch.ones(len(rows), dtype=theta.dtype, device=theta.device)
        done = ~active
        new_theta, new_f, new_g = theta.clone(), f.clone(), g.clone()
        for _ls in range(40):
            trial = theta + step.unsqueeze(1) * d
            tf, tg = fg(trial, rows)
            ok = (tf <= f + 1e-4 * step * gd) & torch.isfinite(tf) & ~done
            if bool(ok.any()):
                new_theta = torch.where(ok.unsqueeze(1), trial, new_theta)
                new_f = torch.where(ok, tf, new_f)
                new_g = torch.where(ok.unsqueeze(1), tg, new_g)
            done = done | ok
            if bool(done.all()):
                break
            step = torch.where(done, step, step * 0.5)
        failed = active & ~done  # no acceptable step: as good as this row gets
        s, y = new_theta - theta, new_g - g
        sy = (s * y).sum(1)
        valid = sy > 1e-10 * (y * y).sum(1).clamp_min(1e-30)
        rho = torch.where(valid, 1.0 / sy.clamp_min(1e-30), torch.zeros_like(sy))
        hist = [*hist[-(history - 1) :], (s, y, rho)] if history > 1 else [(s, y, rho)]
        gamma = torch.where(valid, sy / (y * y).sum(1).clamp_min(1e-30), gamma)
        n_iter[rows] += active.long()
        theta, f, g = new_theta, new_f, new_g
        out[rows] = theta
        active = active & ~failed & (g.abs().amax(dim=1) > tol)
    return out, n_iter


def _fit_softmax(x: torch.Tensor, y: torch.Tensor, n_classes: int, *, C, max_iter, tol):
    """Standardised x [L, N, H] float32, y [N] in 0..K-1 -> (W [L, P, H], b [L, P], n_iter)."""
    n_layers, n, h = x.shape
    binary = n_classes == 2
    p = 1 if binary else n_classes
    onehot = torch.nn.functional.one_hot(y, n_classes).to(x.dtype)  # [N, K]
    target = onehot[:, 1:] if binary else onehot
    l2 = 1.0 / (C * n)
    subset: dict[tuple[int, ...], torch.Tensor] = {}  # the layers still being fitted

    def layers(rows: torch.Tensor) -> torch.Tensor:
        if len(rows) == n_layers:
            return x
        key = tuple(rows.tolist())
        if key not in subset:
            subset.clear()
            subset[key] = x.index_select(0, rows)
        return subset[key]

    def fg(theta, rows):
        xr, r = layers(rows), len(rows)
        w = theta[:, : h * p].reshape(r, p, h)
        b = theta[:, h * p :]
        logp = torch.log_softmax(_logits(xr, w, b, binary), dim=-1)  # [R, N, K]
        ce = -(logp * onehot).sum(-1).mean(-1)
        f = ce + 0.5 * l2 * w.square().sum((1, 2))
        resid = logp.exp()
        resid = (resid[..., 1:] if binary else resid) - target  # [R, N, P]
        # the [P, N] @ [N, H] product is most of an evaluation's cost, and on CPU its kernel
        # is 2-3x slower at P = 2 or 3 than at P = 4: pad with zero rows
        padded = torch.nn.functional.pad(resid, (0, -p % 4)) if p > 1 else resid
        gw = torch.bmm(padded.transpose(1, 2), xr)[:, :p] / n + l2 * w  # [R, P, H]
        gb = resid.mean(1)
        return f, torch.cat([gw.reshape(r, -1), gb], dim=1)

    theta0 = torch.zeros(n_layers, h * p + p, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        theta, n_iter = _batched_lbfgs(fg, theta0, max_iter=max_iter, tol=tol)
    return theta[:, : h * p].reshape(n_layers, p, h), theta[:, h * p :], n_iter


@contextlib.contextmanager
def _torch_threads(n: int | None):
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
    in chunks of at most `max_bytes` of float32. Returns predicted labels [L, M] (y's values).
    `num_threads`: torch threads for the fit (None: torch's current setting).
    """
    with _torch_threads(num_threads):
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
    if y.shape != (X.shape[1],):
        raise ValueError(f"y has shape {y.shape}, expected ({X.shape[1]},)")
    classes, y_idx = np.unique(y, return_inverse=True)
    n_layers, n, h = X.shape
    m = X_eval.shape[1]
    out = np.empty((n_layers, m), dtype=classes.dtype)
    if len(classes) == 1:
        out[:] = classes[0]
        return out
    yt = torch.from_numpy(y_idx.astype(np.int64)).to(device)
    for chunk in _layer_chunks(n_layers, (3 * n // 2 + m) * h * 4, max_bytes):
        lo, hi = chunk.start, chunk.stop
        x = _as_float32(X[lo:hi], device)
        mean, scale = _standardise_(x)
        w, b, _ = _fit_softmax(x, yt, len(classes), C=C, max_iter=max_iter, tol=tol)
        del x
        xe = _as_float32(X_eval[lo:hi], device).sub_(mean).div_(scale)
        with torch.no_grad():
            pred = _logits(xe, w, b, len(classes) == 2).argmax(-1).cpu().numpy()
        out[lo:hi] = classes[pred]
    return out


# ---------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be [N, H] and y [N]; got {X.shape} and {y.shape}")
    if X.shape[0] == 0:
        raise ValueError("cannot fit a probe on zero examples")
    return X, y


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Standardised multinomial logistic regression (scikit-learn's objective, torch L-BFGS).

    Learned: `classes_`, `mean_`, `scale_`, `coef_` ([1, H] for two classes, else [K, H]; on
    standardised features), `intercept_`, `n_iter_`.
    """

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 200,
        tol: float = 1e-4,
        device="cpu",
        num_threads: int | None = None,
        random_state=None,
    ):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state  # unused: the solver is deterministic

    def fit(self, X, y):
        with _torch_threads(self.num_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = _check_xy(X, y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        x = _as_float32(X, self.device).unsqueeze(0)
        mean, scale = _standardise_(x)
        self.mean_ = mean[0, 0].cpu().numpy()
        self.scale_ = scale[0, 0].cpu().numpy()
        if len(self.classes_) == 1:
            self.coef_ = np.zeros((1, X.shape[1]), dtype=np.float32)
            self.intercept_ = np.zeros(1, dtype=np.float32)
            self.n_iter_ = 0
            return self
        yt = torch.from_numpy(y_idx.astype(np.int64)).to(self.device)
        w, b, n_iter = _fit_softmax(
            x, yt, len(self.classes_), C=self.C, max_iter=self.max_iter, tol=self.tol
        )
        self.coef_ = w[0].cpu().numpy()
        self.intercept_ = b[0].cpu().numpy()
        self.n_iter_ = int(n_iter[0])
        return self

    def decision_function(self, X) -> np.ndarray:
        X = (np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_
        z = X @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X) -> np.ndarray:
        z = self.decision_function(X)
        if z.ndim == 1:
            z = np.stack([np.zeros_like(z), z], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        if len(self.classes_) == 1:
            return np.full(len(X), self.classes_[0])
        z = self.decision_function(X)
        idx = (z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)
        return self.classes_[idx]


class SVCProbe(ClassifierMixin, BaseEstimator):
    """The paper's NLI probe: standardisation + scikit-learn `SVC` (its defaults: RBF, C=1)."""

    def __init__(
        self, C: float = 1.0, kernel: str = "rbf", gamma="scale", degree: int = 3, random_state=None
    ):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.random_state = random_state

    def fit(self, X, y):
        X, y = _check_xy(X, y)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            self.pipeline_ = None
            return self
        svc = SVC(
            C=self.C,
            kernel=self.kernel,
            gamma=self.gamma,
            degree=self.degree,
            random_state=self.random_state,
        )
        self.pipeline_ = make_pipeline(StandardScaler(), svc).fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        if self.pipeline_ is None:
            return np.full(len(X), self.classes_[0])
        return self.pipeline_.predict(np.asarray(X, dtype=np.float32))


def _seeded(random_state) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


class _MLP(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, x):
        return self.net(x)


class MLPProbe(ClassifierMixin, BaseEstimator):
    """One-hidden-layer ReLU MLP (torch, Adam) with early stopping on a seeded held-out part.

    Training stops when the held-out loss has not improved by `tol` for `patience` epochs; the
    best epoch's weights are kept. Learned: `classes_`, `mean_`, `scale_`, `model_`, `n_epochs_`.
    `num_threads` defaults to 1: small matrices gain little from threads and lose a lot on a busy
    machine; use more cores by probing layers in parallel (`probe_all_layers(n_jobs=...)`).
    """

    def __init__(
        self,
        hidden_size: int = 100,
        alpha: float = 1e-4,
        lr: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int = 5,
        validation_fraction: float = 0.1,
        tol: float = 1e-4,
        device="cpu",
        num_threads: int | None = 1,
        random_state=None,
    ):
        self.hidden_size = hidden_size
        self.alpha = alpha
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state

    def fit(self, X, y):
        with _torch_threads(self.num_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = _check_xy(X, y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        x = _as_float32(X, self.device).unsqueeze(0)
        mean, scale = _standardise_(x)
        x = x[0]
        self.mean_ = mean[0, 0].cpu().numpy()
        self.scale_ = scale[0, 0].cpu().numpy()
        yt = torch.from_numpy(y_idx.astype(np.int64)).to(self.device)
        seed = _seeded(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        n = len(yt)
        n_val = round(self.validation_fraction * n) if n >= 20 else 0
        perm = torch.randperm(n, generator=gen).to(self.device)
        val, tr = perm[:n_val], perm[n_val:]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _MLP(x.shape[1], self.hidden_size, len(self.classes_)).to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.alpha)
        loss_fn = nn.CrossEntropyLoss()
        best, best_state, bad, epoch = np.inf, None, 0, 0
        for epoch in range(1, self.max_epochs + 1):  # noqa: B007
            model.train()
            order = tr[torch.randperm(len(tr), generator=gen).to(self.device)]
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo : lo + self.batch_size]
                opt.zero_grad()
                loss_fn(model(x[idx]), yt[idx]).backward()
                opt.step()
            if n_val == 0:
                continue
            model.eval()
            with torch.no_grad():
                v = float(loss_fn(model(x[val]), yt[val]))
            if v < best - self.tol:
                best, bad = v, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        self.model_ = model
        self.n_epochs_ = epoch
        return self

    def predict_proba(self, X) -> np.ndarray:
        x = (np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_
        with torch.no_grad(), _torch_threads(self.num_threads):
            z = self.model_(torch.from_numpy(x).to(self.device))
        return torch.softmax(z, -1).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class _BiLSTMCRF(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_layers: int, n_tags: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            n_in,
            hidden,
            num_layers=n_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_tags)
        self.crf = LinearChainCRF(n_tags)

    def emissions(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return self.out(self.dropout(h))


class BiLSTMCRFProbe(BaseEstimator):
    """The paper's NER probe: a BiLSTM over a sentence's word vectors + a linear-chain CRF.

    `fit(X, y)`: X a list of [n_words, H] arrays (H is read from the data), y a list of label-id
    arrays of the same lengths. Sentences are batched by length (padding only within a batch)
    and trained with Adam for `epochs` epochs, seeded by `random_state`. `predict` returns a list
    of label-id arrays (Viterbi decoding). Learned: `classes_`, `mean_`, `scale_`, `model_`.
    `num_threads` defaults to 1, as for `MLPProbe` (measured: 2 threads on a loaded 2-core
    machine made a 22k-word fit 17x slower); parallelise across layers instead.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        lr: float = 5e-3,
        epochs: int = 5,
        batch_size: int = 32,
        device="cpu",
        num_threads: int | None = 1,
        random_state=None,
    ):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state

    def _batches(self, X: Sequence[np.ndarray], order: np.ndarray):
        """Yield (indices, padded [B, T, H] standardised tensor, lengths [B]) in `order`."""
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            lengths = torch.tensor([len(X[i]) for i in idx])
            xs = [torch.from_numpy(np.asarray(X[i], dtype=np.float32)) for i in idx]
            x = nn.utils.rnn.pad_sequence(xs, batch_first=True).to(self.device)
            x = (x - self.mean_t_) / self.scale_t_
            yield idx, x, lengths.to(self.device)

    def fit(self, X: Sequence[np.ndarray], y: Sequence[np.ndarray]):
        with _torch_threads(self.num_threads):
            return self._fit(X, y)

    def _fit(self, X: Sequence[np.ndarray], y: Sequence[np.ndarray]):
        if len(X) != len(y) or any(len(a) != len(b) for a, b in zip(X, y, strict=True)):
            raise ValueError("X and y must be lists of equally long per-sentence arrays")
        keep = [i for i in range(len(X)) if len(X[i]) > 0]
        if not keep:
            raise ValueError("cannot fit a probe on zero words")
        flat = np.concatenate([np.asarray(X[i], dtype=np.float32) for i in keep])
        if flat.ndim != 2:
            raise ValueError("each sentence must be an [n_words, H] array")
        self.classes_, y_flat = np.unique(
            np.concatenate([np.asarray(y[i]) for i in keep]), return_inverse=True
        )
        self.mean_ = flat.mean(0)
        std = flat.std(0)
        self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        self.mean_t_ = torch.from_numpy(self.mean_).to(self.device)
        self.scale_t_ = torch.from_numpy(self.scale_).to(self.device)
        del flat
        offsets = np.cumsum([0] + [len(X[i]) for i in keep])
        y_idx = {i: y_flat[offsets[k] : offsets[k + 1]] for k, i in enumerate(keep)}
        seed = _seeded(self.random_state)
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _BiLSTMCRF(
                X[keep[0]].shape[1],
                self.hidden_size,
                self.num_layers,
                len(self.classes_),
                self.dropout,
            ).to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        # length-sorted batches (little padding), visited in a seeded random order each epoch
        by_len = np.array(sorted(keep, key=lambda i: (len(X[i]), i)))
        batches = []
        for idx, x, lengths in self._batches(X, by_len):
            tags = nn.utils.rnn.pad_sequence(
                [torch.from_numpy(y_idx[i].astype(np.int64)) for i in idx], batch_first=True
            ).to(self.device)
            mask = torch.arange(x.shape[1], device=self.device) < lengths.unsqueeze(1)
            batches.append((x, lengths, tags, mask))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.train()
            for _ in range(self.epochs):
                for b in rng.permutation(len(batches)):
                    x, lengths, tags, mask = batches[b]
                    opt.zero_grad()
                    loss = model.crf(model.emissions(x, lengths), tags, mask)
                    loss.backward()
                    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                    opt.step()
        model.eval()
        self.model_ = model
        return self

    def predict(self, X: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.empty(0, dtype=self.classes_.dtype) for _ in X]
        nonempty = [i for i in range(len(X)) if len(X[i]) > 0]
        order = np.array(sorted(nonempty, key=lambda i: (len(X[i]), i)), dtype=int)
        with torch.no_grad(), _torch_threads(self.num_threads):
            for idx, x, lengths in self._batches(X, order):
                mask = torch.arange(x.shape[1], device=self.device) < lengths.unsqueeze(1)
                tags = self.model_.crf.decode(self.model_.emissions(x, lengths), mask).cpu()
                for row, i in enumerate(idx):
                    out[i] = self.classes_[tags[row, : len(X[i])].numpy()]
        return out


PROBE_KINDS = {
    "linear": LinearProbe,
    "svc": SVCProbe,
    "mlp": MLPProbe,
    "bilstm-crf": BiLSTMCRFProbe,
}


def make_probe(kind: str, **hyper) -> BaseEstimator:
    """A probe of `kind` ("linear", "svc", "mlp", "bilstm-crf") with hyper-parameters `hyper`."""
    try:
        cls = PROBE_KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown probe kind {kind!r}; expected one of {sorted(PROBE_KINDS)}"
        ) from None
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {unknown} for probe {kind!r}; allowed: {sorted(allowed)}"
        )
    return cls(**hyper)
