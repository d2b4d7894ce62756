"""Probe estimators, scikit-learn style.

Every probe: `__init__` stores hyper-parameters only, `fit` returns `self`, learned attributes end
in `_`, randomness comes from `random_state`. Inputs are standardised with the fit set's mean and
standard deviation (zero-variance features keep scale 1, as `StandardScaler` does). The linear
probe's solver, and its all-layers-at-once form `fit_layers_linear`, live in
`bioprobe.probing.softmax`.
"""

from __future__ import annotations

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
from bioprobe.probing.softmax import (
    as_float32,
    fit_softmax,
    penalty_ridge,
    preconditioner,
    standardise_,
    torch_threads,
)

__all__ = [
    "PROBE_KINDS",
    "BiLSTMCRFProbe",
    "LinearProbe",
    "MLPProbe",
    "SVCProbe",
    "make_probe",
]


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
        with torch_threads(self.num_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = _check_xy(X, y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        x = as_float32(X, self.device).unsqueeze(0)
        mean, scale = standardise_(x)
        self.mean_ = mean[0, 0].cpu().numpy()
        self.scale_ = scale[0, 0].cpu().numpy()
        if len(self.classes_) == 1:
            self.coef_ = np.zeros((1, X.shape[1]), dtype=np.float32)
            self.intercept_ = np.zeros(1, dtype=np.float32)
            self.n_iter_ = 0
            return self
        yt = torch.from_numpy(y_idx.astype(np.int64)).to(self.device).unsqueeze(0)
        w, b, n_iter = fit_softmax(
            x,
            yt,
            len(self.classes_),
            C=self.C,
            max_iter=self.max_iter,
            tol=self.tol,
            precondition=preconditioner(
                x, ridge=penalty_ridge(self.C, len(y_idx), len(self.classes_))
            ),
        )
        self.coef_ = w[0, 0].cpu().numpy()
        self.intercept_ = b[0, 0].cpu().numpy()
        self.n_iter_ = int(n_iter[0, 0])
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
        with torch_threads(self.num_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = _check_xy(X, y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        x = as_float32(X, self.device).unsqueeze(0)
        mean, scale = standardise_(x)
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
        with torch.no_grad(), torch_threads(self.num_threads):
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
    `num_threads` defaults to 1, as for `MLPProbe` (threads slow it down on a busy machine:
    bench/RESULTS.md); parallelise across layers instead.
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
        with torch_threads(self.num_threads):
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
        with torch.no_grad(), torch_threads(self.num_threads):
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
