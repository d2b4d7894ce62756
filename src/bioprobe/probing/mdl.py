"""MDL probing: the online code of Voita & Titov (2020), "Information-Theoretic Probing with
Minimum Description Length", with the linear probe as the model.

The codelength of a split's labels given its representations, in bits. The examples, in a
seeded random order, are cut into blocks ending at 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25,
50 and 100 % of them. The first block is sent with the uniform code (log2 K bits a label); each
later block with a probe trained on all the blocks before it: -log2 p(y | x) summed over the
block. The uniform codelength is N log2 K, the compression uniform / online: about 1 when the
representation tells the probe nothing about the labels, large when a probe learns them from
few examples; below 1 when the probe's predictions cost more than guessing (a probe that
overfits small blocks). Only labels are transmitted, the inputs are known to both sides: the
features are standardised once over all N. Skewed labels compress above 1 from their
frequencies alone: compare the task with its control.

The probe is the linear probe (`softmax.fit_softmax`: scikit-learn's standardised
LogisticRegression objective, the same C, max_iter and tol). A block's probe is a softmax over
the classes its training blocks hold (the others get probability 0, as in scikit-learn's model
of the classes it has seen), and every probability is mixed with the uniform code at weight
`UNIFORM_WEIGHT`: a label unseen so far (or a confidently wrong probe) costs at most
-log2(1e-6 / K) bits instead of infinitely many, every other label at most 1.4e-6 bits more.
All layers and targets (task, control) of a block are one batched solve, as in the linear probe.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bioprobe.probing.rows import (
    check_targets,
    draw_keys,
    mean_rows_over_draws,
    probe_row,
    shuffled_controls,
)
from bioprobe.probing.run import target_labels
from bioprobe.probing.softmax import (
    _DEFAULT_MAX_BYTES,
    _layer_chunks,
    as_float32,
    fit_softmax,
    log_proba_softmax,
    penalty_ridge,
    second_moments,
    standardise_,
    torch_threads,
    whitening,
)

if TYPE_CHECKING:
    from bioprobe.probing.multilabel import MultiLabelProbeData
    from bioprobe.probing.run import ProbeData

__all__ = [
    "BLOCK_FRACTIONS",
    "PROBE",
    "UNIFORM_WEIGHT",
    "block_ends",
    "block_order",
    "mdl_multilabel_rows",
    "mdl_rows",
    "online_codelengths",
]

#: Voita & Titov's block boundaries, as fractions of the examples
BLOCK_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
#: the uniform code's share of every transmitted probability (see the module docstring)
UNIFORM_WEIGHT = 1e-6
#: the `probe` column of the MDL rows: computed on the fit split, unlike the scored probes
PROBE = "mdl"
#: the random stream of the example order (the control tasks use streams 0 and 1 of the seed)
_ORDER_STREAM = 2


def block_ends(n: int) -> np.ndarray:
    """The blocks' exclusive ends for `n` examples: `BLOCK_FRACTIONS` of n, rounded, at least
    1, without repeats (small n merges the first blocks)."""
    ends = np.round(np.asarray(BLOCK_FRACTIONS) * n).astype(np.int64)
    return np.unique(np.clip(ends, 1, n))


def block_order(n: int, seed: int) -> np.ndarray:
    """The order in which the examples are transmitted: a permutation seeded by the run."""
    return np.random.default_rng([seed, _ORDER_STREAM]).permutation(n)


def online_codelengths(
    X,
    ys: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    device: str = "cpu",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    num_threads: int | None = None,
) -> np.ndarray:
    """Online codelengths in bits [T, L] of label sets ys [T, N] (class ids 0..n_classes-1)
    given features X [L, N, H] (float16/32 array or memmap, loaded in chunks of layers of at
    most `max_bytes` float32). The uniform codelength is N log2(n_classes) for every row."""
    ys = np.asarray(ys, dtype=np.int64)
    if X.ndim != 3 or ys.ndim != 2 or ys.shape[1] != X.shape[1]:
        raise ValueError(f"X {X.shape} must be [L, N, H] and ys {ys.shape} [T, N]")
    if ys.shape[1] == 0:
        raise ValueError("MDL needs at least one unit to code; the fit split has none")
    if ys.min() < 0 or ys.max() >= n_classes:
        raise ValueError(f"labels must be class ids 0..{n_classes - 1}")
    n_layers, n, h = X.shape
    order = block_order(n, seed)
    y = torch.from_numpy(ys[:, order]).to(device)
    out = np.empty((len(ys), n_layers))
    with torch_threads(num_threads):
        for chunk in _layer_chunks(n_layers, 2 * n * h * 4, max_bytes):
            # rows in transmission order: every block's training set is a prefix
            x = as_float32(np.take(X[chunk.start : chunk.stop], order, axis=1), device)
            standardise_(x)
            bits = _online_bits(x, y, n_classes, block_ends(n), C, max_iter, tol)
            out[:, chunk.start : chunk.stop] = bits.T.cpu().numpy()
    return out


def _online_bits(x, y, n_classes, ends, C, max_iter, tol) -> torch.Tensor:
    """[L, T] bits: the first block uniform, each later one under a probe fitted on the prefix
    before it."""
    n_layers = x.shape[0]
    sigma = second_moments(x)  # of all the examples: it only shapes the solver's path
    bits = torch.full((n_layers, len(y)), ends[0] * math.log2(n_classes), dtype=torch.float64)
    uniform = torch.tensor(math.log(UNIFORM_WEIGHT / n_classes), dtype=x.dtype, device=x.device)
    classes = torch.arange(n_classes, device=y.device)
    solver = {"C": C, "max_iter": max_iter, "tol": tol}
    for start, stop in itertools.pairwise(ends.tolist()):
        exclude = ~(y[:, :start, None] == classes).any(dim=1)  # [T, K]: classes not seen yet
        w, b = _block_fit(x[:, :start], y[:, :start], n_classes, exclude, sigma, solver)
        logp = log_proba_softmax(x[:, start:stop], w, b, exclude)  # [L, M, T, K]
        logp = torch.logaddexp(logp + math.log1p(-UNIFORM_WEIGHT), uniform)
        gold = y[:, start:stop].T[None, :, :, None].expand(n_layers, -1, -1, 1)
        bits -= logp.gather(-1, gold).squeeze(-1).double().sum(1).cpu() / math.log(2)
    return bits


def _block_fit(x, y, n_classes, exclude, sigma, solver) -> tuple[torch.Tensor, torch.Tensor]:
    """W [L, T, P, H], b of the probe on a prefix x [L, n, H], preconditioned for its own
    penalty (l2 = 1 / (C n), which dominates the small blocks' Hessian) so that the Hessian in
    the solver's coordinates starts near the identity.

    With fewer examples than dimensions, the fit runs in the prefix's row space: x^T = Q R,
    features R^T [L, n, n] and W = A Q^T, the same optimum (the loss's gradient lies in the row
    space and the penalty is rotation-invariant) at n instead of H columns, whitened by the
    prefix's own second moments (exact where the small blocks need it)."""
    n_layers, n, h = x.shape
    ridge = penalty_ridge(solver["C"], n, n_classes)
    if n >= h:
        pre = whitening(sigma, ridge)
        w, b, _ = fit_softmax(x, y, n_classes, precondition=pre, exclude=exclude, **solver)
        return w, b
    q, r = torch.linalg.qr(x.transpose(1, 2))  # q [L, H, n], r [L, n, n]
    z = r.transpose(1, 2)
    pre = whitening(torch.bmm(r, z) / n, ridge)
    a, b, _ = fit_softmax(z, y, n_classes, precondition=pre, exclude=exclude, **solver)
    return torch.bmm(a.reshape(n_layers, -1, n), q.transpose(1, 2)).reshape(*a.shape[:3], h), b


def _rows(online: np.ndarray, uniform: float, targets: Sequence[str]) -> list[dict]:
    """Per layer and target: `mdl_online_bits`, `mdl_uniform_bits` and `compression`."""
    rows = []
    for t, target in enumerate(targets):
        for layer, bits in enumerate(online[t]):
            values = {
                "mdl_online_bits": bits,
                "mdl_uniform_bits": uniform,
                "compression": uniform / bits if bits > 0 else math.nan,  # one class: 0 / 0
            }
            rows += [probe_row(layer, PROBE, target, m, v) for m, v in values.items()]
    rows.sort(key=lambda r: (r["layer"], r["target"], r["metric"]))
    return rows


def _solver(hyper: Mapping[str, Any] | None) -> dict[str, Any]:
    """The linear probe's solver settings (`probe.linear`): C, max_iter, tol."""
    return {k: v for k, v in (hyper or {}).items() if k in ("C", "max_iter", "tol")}


def mdl_rows(
    fit: ProbeData,
    score: ProbeData,
    hyper: Mapping[str, Any] | None = None,
    targets: Sequence[str] = ("task", "control"),
    label_mode: str = "bio",
    seed: int = 0,
    num_threads: int | None = None,
    control_draws: int = 1,
) -> list[dict]:
    """MDL rows of class labels on `fit`'s units (NER: words; pairs: pairs), with the linear
    probe's `hyper`. The task's labels are those its probes see (`label_mode`), the control's
    those of the control task (`score` only fixes the NER control's word-type mapping, as for
    the probes); the control's codelength is the mean over its `control_draws` draws."""
    targets = check_targets(targets)
    names, labels = target_labels(fit, score, targets, label_mode, seed, control_draws)
    keys = draw_keys(targets, labels)
    ys = np.stack([labels[k][0] for k in keys])
    online = online_codelengths(
        fit.features, ys, len(names), seed=seed, num_threads=num_threads, **_solver(hyper)
    )
    online = mean_rows_over_draws(targets, keys, online)
    return _rows(online, len(ys[0]) * math.log2(len(names)), targets)


def mdl_multilabel_rows(
    fit: MultiLabelProbeData,
    score: MultiLabelProbeData,
    hyper: Mapping[str, Any] | None = None,
    targets: Sequence[str] = ("task", "control"),
    seed: int = 0,
    num_threads: int | None = None,
    control_draws: int = 1,
) -> list[dict]:
    """MDL rows of label sets: each of the K labels sent by its own one-vs-rest probe (the
    multilabel linear probe's), the set's codelength their sum; uniform: N K bits. The
    control: the shuffled label rows the multilabel probes' control fits on (the mean over
    `control_draws` shuffles)."""
    targets = check_targets(targets)
    gold = {"task": fit.targets}
    if "control" in targets:
        controls = shuffled_controls(fit.targets, score.targets, seed, control_draws)
        gold |= {key: fit_gold for key, (fit_gold, _) in controls.items()}
    k = len(fit.label_names)
    keys = draw_keys(targets, gold)
    ys = np.concatenate([gold[key].T for key in keys])  # [S*K, N]: set s's label j at s*K + j
    online = online_codelengths(
        fit.features, ys, 2, seed=seed, num_threads=num_threads, **_solver(hyper)
    )
    online = mean_rows_over_draws(targets, keys, online.reshape(len(keys), k, -1).sum(1))
    return _rows(online, float(fit.targets.shape[0] * k), targets)
