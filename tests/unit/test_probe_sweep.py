"""The probe-complexity sweep (bioprobe.probing.sweep): the C sweep against scikit-learn, the
rank-constrained probe against the plain one and against random-restart optimisation, the rows
against the default probe's, the settings against the schema, the Pareto figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bioprobe.config import validate_config
from bioprobe.pipeline.tables import KEY, PROBE_SWEEP_COLUMNS
from bioprobe.plotting import figures as F
from bioprobe.probing import ProbeData, fit_layers_linear, probe_all_layers
from bioprobe.probing.softmax import fit_softmax, preconditioner, standardise_
from bioprobe.probing.sweep import fit_layers_sweep, fit_low_rank, full_rank, sweep_rows
from bioprobe.settings import ProbeSweepSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def problem(seed: int, n: int, h: int, k: int, n_layers: int = 2):
    """Correlated features and labels from a noisy linear rule on them: [L, N, H], [N]."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(h, h)) * np.logspace(0, -1.5, h)[:, None] + np.eye(h) * 0.1
    x = rng.normal(size=(n_layers, n, h)) @ mix
    y = (x[-1] @ rng.normal(size=(h, k)) + rng.gumbel(size=(n, k))).argmax(1)
    return x.astype(np.float32), y


@pytest.mark.parametrize(("n", "h"), [(500, 12), (100, 40)])  # preconditioned, then not
def test_C_sweep_predicts_as_sklearn_logistic_regression(n, h):
    x, y = problem(0, n, h, 3)
    xe, _ = problem(1, 200, h, 3)
    control = np.random.default_rng(2).permutation(y)
    cs = (0.003, 0.1, 1.0)  # float32 leaves weakly penalised, ill-conditioned fits near ties
    preds = fit_layers_sweep(x, np.stack([y, control]), xe, Cs=cs, tol=1e-6, max_iter=1000)
    assert set(preds) == {("C", c) for c in cs}
    for c in cs:
        for t, labels in enumerate((y, control)):
            for layer in range(2):
                scaler = StandardScaler().fit(x[layer].astype(np.float64))
                ref = LogisticRegression(C=c, tol=1e-8, max_iter=10000)
                ref.fit(scaler.transform(x[layer]), labels)
                expected = ref.predict(scaler.transform(xe[layer]))
                assert np.mean(preds["C", c][t, layer] == expected) >= 0.99


def loss(x, y, w, b, C):
    """scikit-learn's objective / N of one (layer, target) problem: mean CE + ||W||² / (2 C N)."""
    p = w.shape[0]
    z = x @ w.T + b
    if p == 1:
        z = torch.cat([torch.zeros_like(z), z], dim=1)
    ce = torch.nn.functional.cross_entropy(z, y)
    return float(ce + 0.5 / (C * len(y)) * w.square().sum())


def reference_low_rank(x, y, k, rank, C, restarts=3) -> float:
    """The least objective over random restarts of torch's own L-BFGS on W = A B."""
    n, h = x.shape
    x, best = x.double(), np.inf
    for seed in range(restarts):
        gen = torch.Generator().manual_seed(seed)
        a = (0.1 * torch.randn(k, rank, generator=gen, dtype=torch.double)).requires_grad_()
        bm = (0.1 * torch.randn(rank, h, generator=gen, dtype=torch.double)).requires_grad_()
        b = torch.zeros(k, dtype=torch.double, requires_grad=True)
        opt = torch.optim.LBFGS(
            [a, bm, b],
            max_iter=1000,
            tolerance_grad=1e-9,
            tolerance_change=1e-13,
            line_search_fn="strong_wolfe",
        )

        def closure(a=a, bm=bm, b=b, opt=opt):
            opt.zero_grad()
            w = a @ bm
            f = torch.nn.functional.cross_entropy(x @ w.T + b, y)
            f = f + 0.5 / (C * n) * w.square().sum()
            f.backward()
            return f

        opt.step(closure)
        best = min(best, float(closure().detach()))
    return best


@pytest.mark.parametrize(
    ("n", "h", "C"),
    [(600, 24, 1.0), (150, 48, 0.1)],  # preconditioned (N >= 4H), then plain gradients
)
def test_low_rank_probe_reaches_random_restart_optimum(n, h, C):
    k = 4
    x, y = problem(3, n, h, k)
    xt = torch.from_numpy(x)
    standardise_(xt)
    yt = torch.from_numpy(np.stack([y, np.random.default_rng(4).permutation(y)]))
    pre = preconditioner(xt)
    assert (pre is not None) == (n >= 4 * h)
    w, b, _ = fit_softmax(xt, yt, k, C=C, max_iter=1000, tol=1e-7, precondition=pre)
    for rank in (1, 2):
        wr, br, _ = fit_low_rank(
            xt, yt, k, rank, (w, b), C=C, max_iter=1000, tol=1e-7, precondition=pre
        )
        assert all(torch.linalg.matrix_rank(m).item() <= rank for m in wr.flatten(0, 1))
        for layer in range(2):  # the task target (the control's are alike and cost as much)
            xl = xt[layer].double()
            ours = loss(xl, yt[0], wr[layer, 0].double(), br[layer, 0].double(), C)
            full = loss(xl, yt[0], w[layer, 0].double(), b[layer, 0].double(), C)
            ref = reference_low_rank(xt[layer], yt[0], k, rank, C)
            assert ours <= ref + 1e-5  # as good as the best random restart
            assert ours >= full - 1e-6  # and a constrained optimum: never below the full one


def test_low_rank_at_full_rank_is_the_linear_probe():
    """At rank K - 1 the constraint binds nothing: the factored solver (run there on purpose)
    keeps the linear probe's optimum, and the sweep's rank rows from K - 1 up are its
    predictions."""
    k, C = 3, 0.5
    x, y = problem(5, 800, 16, k)
    xe, _ = problem(6, 300, 16, k)
    xt = torch.from_numpy(x.copy())
    standardise_(xt)
    yt = torch.from_numpy(y[None])
    pre = preconditioner(xt)
    w, b, _ = fit_softmax(xt, yt, k, C=C, max_iter=1000, tol=1e-7, precondition=pre)
    wr, br, _ = fit_low_rank(
        xt, yt, k, full_rank(k), (w, b), C=C, max_iter=1000, tol=1e-7, precondition=pre
    )
    for layer in range(2):
        full = loss(xt[layer].double(), yt[0], w[layer, 0].double(), b[layer, 0].double(), C)
        ours = loss(xt[layer].double(), yt[0], wr[layer, 0].double(), br[layer, 0].double(), C)
        assert ours == pytest.approx(full, abs=1e-6)
    preds = fit_layers_sweep(x, y[None], xe, ranks=(1, 2, 8), C=C, tol=1e-6, max_iter=1000)
    plain = fit_layers_linear(x, y, xe, C=C, tol=1e-6, max_iter=1000)
    assert np.mean(preds["rank", 2][0] == plain) >= 0.99
    assert np.array_equal(preds["rank", 8], preds["rank", 2])
    assert np.mean(preds["rank", 1][0] == plain) < 0.99  # rank 1 does constrain 3 classes


def test_full_rank():
    assert [full_rank(k) for k in (2, 3, 6)] == [1, 2, 5]


def ner_data(seed: int, n_words: int = 600, h: int = 10):
    """Word units of a toy NER split: labels from the features, word types, sentences of 6."""
    x, y = problem(seed, n_words, h, 3, n_layers=3)
    types = [f"w{i % 40}" for i in range(n_words)]
    names = ["O", "B-Dis", "I-Dis"]
    return ProbeData(x, y, names, sentence_lengths=np.full(n_words // 6, 6), word_types=types)


def test_sweep_rows_match_the_default_probe_and_subtract_the_control():
    fit, score = ner_data(7), ner_data(8)
    hyper = {"C": 0.1, "max_iter": 1000, "tol": 1e-6}  # tight: both reach the same optimum
    rows = pd.DataFrame(sweep_rows(fit, score, Cs=(0.01, 0.1), ranks=(1, 4), hyper=hyper, seed=3))
    assert set(rows["target"]) == {"task", "control", "selectivity"}
    assert set(zip(rows["complexity"], rows["setting"], strict=True)) == {
        ("C", 0.01),
        ("C", 0.1),
        ("rank", 1.0),
        ("rank", 4.0),
    }
    wide = rows.pivot_table(
        index=["complexity", "setting", "layer", "metric"], columns="target", values="value"
    )
    assert np.allclose(wide["selectivity"], wide["task"] - wide["control"])
    # the C = 0.1 rows are the default linear probe's at C = 0.1, computed through probe_all_layers
    probe = pd.DataFrame(probe_all_layers(fit, score, hyper=hyper, label_mode="type", seed=3))
    probe = probe[~probe["metric"].str.startswith("selectivity")]
    ours = rows[(rows["complexity"] == "C") & (rows["setting"] == 0.1)]
    merged = probe.merge(ours, on=["layer", "target", "metric"], suffixes=("_probe", "_sweep"))
    assert len(merged) == len(probe)
    assert np.allclose(merged["value_probe"], merged["value_sweep"], atol=1e-6)


def test_settings_and_schema_agree():
    splits = {"train": "a.tsv", "validation": "b.tsv", "test": "c.tsv"}
    task = {"type": "ner", "format": "bio-tsv", "path": "data", "splits": splits}
    config = validate_config({"tasks": {"t": task}, "models": {"m": {"source": "m"}}})
    settings = ProbeSweepSettings.from_config(config["probe_sweep"], "probe_sweep")
    assert settings == ProbeSweepSettings()


def sweep_table() -> pd.DataFrame:
    """A probe_sweep table of two tasks, pretrained and random-init, two seeds."""
    rows = []
    for task, method, seed, layer in np.ndindex(2, 2, 2, 3):
        for complexity, settings in (("C", (0.01, 0.1, 1.0)), ("rank", (1, 2))):
            for i, setting in enumerate(settings):
                task_score = 0.5 + 0.1 * layer + 0.05 * i - 0.2 * method
                control = 0.3 + 0.1 * i
                for target, value in (("task", task_score), ("control", control)):
                    rows.append(
                        {
                            "task": f"t{task}",
                            "model": "m",
                            "method": ["pretrained", "random-init"][method],
                            "size": 0,
                            "seed": seed,
                            "layer": layer,
                            "complexity": complexity,
                            "setting": setting,
                            "target": target,
                            "metric": "macro_f1",
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows, columns=PROBE_SWEEP_COLUMNS)


def test_probe_sweep_figure(tmp_path):
    df = sweep_table()
    fig = F.build_probe_sweep(df, metric={"t0": "macro_f1", "t1": "macro_f1"}, default_C=0.1)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"pretrained", "random-init", "default (C = 0.1)"} <= set(labels)
    # pretrained's C line: best layer (2) at C = 0.1, in sweep order (x = control, y = task)
    lines = [ln for ln in axes[0].get_lines() if len(ln.get_xdata()) == 3]
    xy = {tuple(np.round(ln.get_ydata(), 6)) for ln in lines}
    assert (0.7, 0.75, 0.8) in xy
    plt.close(fig)
    paths = F.plot_probe_sweep(df, tmp_path / "probe_sweep", metric="macro_f1", default_C=0.1)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    with pytest.raises(ValueError, match="probe_sweep"):
        F.build_probe_sweep(df.assign(metric="accuracy"), metric="macro_f1")
    with pytest.raises(ValueError, match="lacks column"):
        F.build_probe_sweep(df.drop(columns=["complexity"]))
    assert list(df.columns[: len(KEY)]) == KEY
