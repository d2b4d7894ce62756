"""Probe estimators: separable data is learned, shuffled labels are not, the vectorised linear
probe matches scikit-learn per layer, the CRF decodes exactly, and all-layer runs give tidy rows."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bioprobe.probing import (
    BiLSTMCRFProbe,
    LinearChainCRF,
    LinearProbe,
    ProbeData,
    bio_to_type,
    fit_layers_linear,
    make_probe,
    probe_all_layers,
    split_sentences,
)
from bioprobe.probing.rows import control_seeds

H = 24  # a hidden size no real model has: nothing may assume 768


pytestmark = pytest.mark.usefixtures("one_torch_thread")


K = 3


def clusters(rng, n, k=K, h=H, spread=3.0):
    """Well separated Gaussian clusters, balanced labels (linearly separable in practice)."""
    centers = rng.normal(size=(k, h)) * spread
    y = np.arange(n) % k
    rng.shuffle(y)
    return centers, y


def cluster_split(seed, n_fit=300, n_eval=600):
    rng = np.random.default_rng(seed)
    centers, y = clusters(rng, n_fit + n_eval)
    X = (centers[y] + rng.normal(size=(len(y), H))).astype(np.float32)
    return X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:], rng


def sentences(X, y, rng, lo=2, hi=10):
    """Cut word rows into sentences of random lengths (for the sequence probe)."""
    lengths = []
    while sum(lengths) < len(y):
        lengths.append(int(rng.integers(lo, hi + 1)))
    lengths[-1] -= sum(lengths) - len(y)
    lengths = np.array([n for n in lengths if n > 0])
    return split_sentences(X, lengths), split_sentences(y, lengths)


def fit_predict(kind, X, y, Xe, rng):
    if kind == "bilstm-crf":
        probe = make_probe(kind, hidden_size=32, epochs=8, num_threads=1, random_state=0)
        xs, ys = sentences(X, y, rng)
        xe, _ = sentences(Xe, np.zeros(len(Xe), dtype=int), rng)
        return np.concatenate(probe.fit(xs, ys).predict(xe))
    hyper = {"num_threads": 1} if kind == "mlp" else {}
    return make_probe(kind, random_state=0, **hyper).fit(X, y).predict(Xe)


KINDS = ["linear", "svc", "mlp", "bilstm-crf"]


@pytest.mark.parametrize("kind", KINDS)
def test_probe_learns_separable_features(kind):
    X, y, Xe, ye, rng = cluster_split(0)
    assert np.mean(fit_predict(kind, X, y, Xe, rng) == ye) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_probe_is_at_chance_on_shuffled_labels(kind):
    # Fit on shuffled labels, score against independently shuffled held-out labels. With K=3
    # balanced classes the accuracy of any predictor that cannot see the held-out labels is
    # 1/3 in expectation with SD sqrt((1/3)(2/3)/600) = 0.019; 0.08 is > 4 SD. A probe that
    # leaked held-out labels or scored on its fit data would be far outside it.
    X, y, Xe, ye, rng = cluster_split(1)
    pred = fit_predict(kind, X, rng.permutation(y), Xe, rng)
    assert abs(np.mean(pred == rng.permutation(ye)) - 1 / K) < 0.08


def layered_problem(seed, n_layers=5, n=600, m=400, h=20, k=4, dtype=np.float16):
    """Layers from hopeless to easy, shifted and scaled (standardisation matters)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, h))
    y, ye = rng.integers(0, k, n), rng.integers(0, k, m)
    sig = np.linspace(0.05, 2.0, n_layers)

    def make(labels):
        noise = rng.normal(size=(n_layers, len(labels), h)) * 3
        return (centers[labels][None] * sig[:, None, None] + noise) * 2 + 5

    return make(y).astype(dtype), y, make(ye).astype(dtype), ye


@pytest.mark.parametrize("k", [2, 4])
def test_vectorised_linear_matches_sklearn_per_layer(k):
    X, y, Xe, ye = layered_problem(0, k=k)
    pred = fit_layers_linear(X, y, Xe, C=1.0)
    assert pred.shape == (X.shape[0], Xe.shape[1])
    for layer in range(X.shape[0]):
        scaler = StandardScaler().fit(X[layer].astype(np.float64))
        ref = LogisticRegression(C=1.0, max_iter=1000, tol=1e-6).fit(
            scaler.transform(X[layer].astype(np.float64)), y
        )
        ref_pred = ref.predict(scaler.transform(Xe[layer].astype(np.float64)))
        assert abs(np.mean(pred[layer] == ye) - np.mean(ref_pred == ye)) <= 0.02
        assert np.mean(pred[layer] == ref_pred) >= 0.98
        # same objective, same optimum: the coefficients agree too
        probe = LinearProbe(C=1.0).fit(X[layer], y)
        scale = np.abs(ref.coef_).max()
        assert np.abs(probe.coef_ - ref.coef_).max() <= 0.03 * scale
        assert np.array_equal(probe.predict(Xe[layer]), pred[layer])


def test_vectorised_linear_memmap_chunks_and_labels(tmp_path):
    X, y, Xe, _ = layered_problem(1, n_layers=4, k=3)
    path = tmp_path / "x.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    names = np.array(["a", "b", "c"])
    whole = fit_layers_linear(X, names[y], Xe)
    chunked = fit_layers_linear(Xm, names[y], Xe, max_bytes=1)  # one layer per chunk
    assert whole.dtype == names.dtype and set(np.unique(whole)) <= set(names)
    assert np.array_equal(whole, chunked)


def test_crf_viterbi_hand_made_two_tags():
    crf = LinearChainCRF(2)
    with torch.no_grad():
        crf.start.copy_(torch.tensor([0.0, 0.0]))
        crf.end.copy_(torch.tensor([0.0, 0.0]))
        # switching tags costs 2; staying is free
        crf.transitions.copy_(torch.tensor([[0.0, -2.0], [-2.0, 0.0]]))
    # per-position argmax is 0 1 0, but the two switches cost 4 > what the middle gains:
    # 000: 3+0+3 = 6;  010: 3+1.5+3-4 = 3.5;  111: 0+1.5+0 = 1.5
    em = torch.tensor([[[3.0, 0.0], [0.0, 1.5], [3.0, 0.0]]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert crf.decode(em, mask).tolist() == [[0, 0, 0]]
    # a middle emission strong enough to pay for both switches wins:
    # 000: 6;  010: 3+5+3-4 = 7;  111: 0+5+0 = 5
    em[0, 1] = torch.tensor([0.0, 5.0])
    assert crf.decode(em, mask).tolist() == [[0, 1, 0]]
    # masking: only the first position counts for a length-1 sequence
    short = torch.tensor([[True, False, False]])
    assert crf.decode(em, short).tolist() == [[0, 0, 0]]


@torch.no_grad()
def test_crf_matches_brute_force_over_all_paths():
    torch.manual_seed(0)
    k, steps = 3, 4
    crf = LinearChainCRF(k)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    em = torch.randn(4, steps, k)
    lengths = torch.tensor([4, 1, 3, 2])
    mask = torch.arange(steps) < lengths[:, None]
    decoded = crf.decode(em, mask)
    log_z = crf.log_partition(em, mask)
    for b in range(len(lengths)):
        n = int(lengths[b])
        paths = list(itertools.product(range(k), repeat=n))
        tags = torch.tensor([list(p) + [0] * (steps - n) for p in paths])
        scores = crf.score(
            em[b : b + 1].expand(len(paths), -1, -1), tags, mask[b : b + 1].expand(len(paths), -1)
        )
        best = paths[int(scores.argmax())]
        assert decoded[b, :n].tolist() == list(best)
        assert decoded[b, n:].tolist() == [0] * (steps - n)
        assert math.isclose(float(log_z[b]), float(torch.logsumexp(scores, 0)), rel_tol=1e-5)
        ll = crf.log_likelihood(
            em[b : b + 1].expand(len(paths), -1, -1), tags, mask[b : b + 1].expand(len(paths), -1)
        )
        assert math.isclose(float(torch.logsumexp(ll, 0)), 0.0, abs_tol=1e-5)


def bio_sentences(rng, n_sent, h=H):
    """Sentences with entity spans (tags O=0, B-X=1, I-X=2), spans separated by at least one O.

    A word vector says only "inside an entity or not" (+ noise): B and I look alike, so telling
    them apart needs the previous word — context a per-word probe does not have.
    """
    inside, outside = rng.normal(size=h) * 2, rng.normal(size=h) * 2
    xs, ys = [], []
    for _ in range(n_sent):
        tags = []
        while len(tags) < rng.integers(5, 15):
            tags += [0] * int(rng.integers(1, 3))
            span = int(rng.integers(1, 4))
            tags += [1] + [2] * (span - 1)
        tags = np.array([*tags, 0])
        x = np.where((tags > 0)[:, None], inside, outside) + rng.normal(size=(len(tags), h))
        xs.append(x.astype(np.float32))
        ys.append(tags)
    return xs, ys


def test_bilstm_crf_learns_bio_sequences():
    from bioprobe.metrics import ner_scores

    rng = np.random.default_rng(0)
    xs, ys = bio_sentences(rng, 200)
    xe, ye = bio_sentences(rng, 100)
    probe = BiLSTMCRFProbe(hidden_size=32, epochs=8, num_threads=1, random_state=0).fit(xs, ys)
    pred = probe.predict(xe)
    assert [len(p) for p in pred] == [len(s) for s in ye]
    gold_flat, pred_flat = np.concatenate(ye), np.concatenate(pred)
    assert np.mean(gold_flat == pred_flat) >= 0.95
    names = np.array(["O", "B-X", "I-X"])
    scores = ner_scores([list(names[s]) for s in ye], [list(names[p]) for p in pred])
    assert scores["entity_f1"] >= 0.9
    # a per-word linear probe cannot separate B from I here: the task really needs context
    flat = LinearProbe().fit(np.concatenate(xs), np.concatenate(ys)).predict(np.concatenate(xe))
    ent = gold_flat > 0
    assert np.mean(flat[ent] == gold_flat[ent]) < 0.85


def test_bilstm_crf_is_seeded_and_reads_hidden_size():
    rng = np.random.default_rng(3)
    xs, ys = bio_sentences(rng, 40, h=7)
    a = BiLSTMCRFProbe(hidden_size=8, epochs=2, random_state=5).fit(xs, ys)
    b = BiLSTMCRFProbe(hidden_size=8, epochs=2, random_state=5).fit(xs, ys)
    assert a.model_.lstm.input_size == 7
    for pa, pb in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert all(np.array_equal(p, q) for p, q in zip(a.predict(xs), b.predict(xs), strict=True))


@pytest.mark.parametrize("kind", ["linear", "svc", "mlp"])
def test_fit_leaves_the_callers_array_alone(kind):
    X, y, Xe, _, _ = cluster_split(2, n_fit=60, n_eval=10)
    before = X.copy()
    make_probe(kind, random_state=0).fit(X, y).predict(Xe)
    assert np.array_equal(X, before)


def test_make_probe_rejects_unknown_kind_and_hyper():
    assert isinstance(make_probe("linear", C=0.5), LinearProbe)
    with pytest.raises(ValueError, match="unknown probe kind"):
        make_probe("forest")
    with pytest.raises(ValueError, match="hidden_sise"):
        make_probe("mlp", hidden_sise=3)
    probe = make_probe("svc", kernel="linear")
    assert probe.get_params()["kernel"] == "linear" and not hasattr(probe, "pipeline_")


# --------------------------------------------------------------------------------------------
# probe_all_layers
# --------------------------------------------------------------------------------------------

NER_NAMES = ["O", "B-Dis", "I-Dis", "B-Chem", "I-Chem"]


def ner_data(seed, n_sent, n_layers=3, h=H, vocab=None):
    """Word rows with BIO tags; layer 0 is noise, higher layers encode the tag ever better."""
    rng = np.random.default_rng(seed)
    vocab = vocab or [f"w{i}" for i in range(40)]
    lengths = rng.integers(3, 9, n_sent)
    tags, types = [], []
    for n in lengths:
        t = []
        while len(t) < n:
            kind = int(rng.integers(0, 3))
            t += [0] if kind == 0 else [2 * kind - 1, 2 * kind][: int(rng.integers(1, 3))]
        tags += t[:n]
        types += [vocab[int(i)] for i in rng.integers(0, len(vocab), n)]
    tags = np.array(tags)
    centers = np.random.default_rng(99).normal(size=(len(NER_NAMES), h)) * 3  # shared
    feats = np.stack(
        [
            centers[tags] * (layer / (n_layers - 1)) + rng.normal(size=(len(tags), h))
            for layer in range(n_layers)
        ]
    ).astype(np.float16)
    return ProbeData(feats, tags, NER_NAMES, sentence_lengths=lengths, word_types=types)


def pair_data(seed, n, n_layers=3, h=H):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.random.default_rng(99).normal(size=(3, h)) * 3  # shared by all splits
    feats = np.stack(
        [
            centers[y] * (layer / (n_layers - 1)) + rng.normal(size=(n, h))
            for layer in range(n_layers)
        ]
    ).astype(np.float32)
    return ProbeData(feats, y, ["entailment", "neutral", "contradiction"])


BASE = {"accuracy", "macro_f1", "micro_f1"}
TOKEN = {"token_macro_f1", "token_micro_f1"}
ENTITY = {"entity_precision", "entity_recall", "entity_f1"}
SELECT = {"selectivity", "selectivity_macro_f1"}


def by_key(rows):
    return {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}


@pytest.mark.parametrize("mode", ["bio", "type"])
def test_probe_all_layers_ner_rows(mode):
    train, test = ner_data(0, 120), ner_data(1, 80)
    rows = probe_all_layers(train, test, "linear", {"C": 1.0}, label_mode=mode, seed=0)
    keys = [(r["layer"], r["target"], r["metric"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {r["probe"] for r in rows} == {"linear"}
    metrics = BASE | TOKEN | (ENTITY if mode == "bio" else set())
    expected = {(layer, t, m) for layer in range(3) for t in ("task", "control") for m in metrics}
    expected |= {(layer, "task", m) for layer in range(3) for m in SELECT}
    assert set(keys) == expected
    v = by_key(rows)
    assert all(np.isfinite(r["value"]) and isinstance(r["value"], float) for r in rows)
    assert v[(2, "task", "accuracy")] > 0.95 > v[(0, "task", "accuracy")]
    assert v[(2, "task", "selectivity")] == pytest.approx(
        v[(2, "task", "accuracy")] - v[(2, "control", "accuracy")]
    )
    assert v[(2, "task", "selectivity")] > 0.3
    # deterministic
    assert rows == probe_all_layers(train, test, "linear", {"C": 1.0}, label_mode=mode, seed=0)


def test_probe_all_layers_bilstm_crf_and_task_only():
    train, test = ner_data(0, 60, h=24), ner_data(1, 30, h=24)
    rows = probe_all_layers(
        train,
        test,
        "bilstm-crf",
        {"hidden_size": 16, "epochs": 3, "num_threads": 1},
        targets=["task"],
        seed=1,
    )
    assert {r["target"] for r in rows} == {"task"}
    assert {r["metric"] for r in rows} == BASE | TOKEN | ENTITY
    assert sorted({r["layer"] for r in rows}) == [0, 1, 2]


def test_probe_all_layers_pairs_parallel():
    train, test = pair_data(0, 150), pair_data(1, 150)
    hyper = {"hidden_size": 16, "num_threads": 1}
    rows = probe_all_layers(train, test, "mlp", hyper, seed=0, n_jobs=2)
    v = by_key(rows)
    assert {m for (_, _, m) in v} == BASE | SELECT
    assert v[(2, "task", "accuracy")] >= 0.95
    assert abs(v[(2, "control", "accuracy")] - 1 / 3) < 0.15
    # same seeds in workers as in one process (only thread counts differ, so allow float noise)
    serial = by_key(probe_all_layers(train, test, "mlp", hyper, seed=0, n_jobs=1))
    assert serial.keys() == v.keys()
    assert all(abs(serial[key] - v[key]) <= 0.05 for key in v)


def test_probe_all_layers_rejects_bad_input():
    ner, pairs = ner_data(0, 10), pair_data(0, 30)
    with pytest.raises(ValueError, match="sentence_lengths"):
        probe_all_layers(pairs, pairs, "bilstm-crf")
    with pytest.raises(ValueError, match="word_types"):
        no_types = ProbeData(ner.features, ner.labels, NER_NAMES, ner.sentence_lengths)
        probe_all_layers(no_types, no_types, "linear")
    with pytest.raises(ValueError, match="targets"):
        probe_all_layers(pairs, pairs, "linear", targets=["tsak"])
    with pytest.raises(ValueError, match="hyper-parameter"):
        probe_all_layers(pairs, pairs, "svc", {"kernal": "rbf"})
    with pytest.raises(ValueError, match="sum to"):
        ProbeData(ner.features, ner.labels, NER_NAMES, sentence_lengths=[1, 2])


def test_bio_to_type():
    names, labels = bio_to_type(NER_NAMES, np.array([0, 1, 2, 3, 4, 2]))
    assert names == ["O", "Dis", "Chem"]
    assert labels.tolist() == [0, 1, 1, 2, 2, 1]
    assert bio_to_type(["O", "Dis"], np.array([1, 0]))[1].tolist() == [1, 0]


def test_linear_probe_fits_25_layers_fast():
    # sanity bound, not a benchmark: 25 layers x 2000 x 64 in one vectorised fit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 2000, 64)).astype(np.float16)
    y = rng.integers(0, 5, 2000)
    start = time.perf_counter()
    pred = fit_layers_linear(X, y, X[:, :100])
    assert pred.shape == (25, 100)
    assert time.perf_counter() - start < 20


def _control_rows(rows):
    return {(r["layer"], r["metric"]): r["value"] for r in rows if r["target"] == "control"}


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_control_is_the_mean_over_its_draws(kind):
    """With control_draws=3 a run's control rows are the mean of the three one-draw runs whose
    control seeds `control_seeds` gives; the task's rows do not change."""
    train, test = ner_data(0, 120), ner_data(1, 80)
    # the MLP's own seed fixed: a one-draw run seeds it with its (the draw's) seed otherwise
    hyper = {"C": 1.0} if kind == "linear" else {"hidden_size": 16, "max_epochs": 20}
    hyper |= {"random_state": 5} if kind == "mlp" else {}
    drawn = probe_all_layers(train, test, kind, hyper, seed=5, control_draws=3)
    seeds = control_seeds(5, 3)
    assert list(seeds) == ["control", "control/2", "control/3"]
    assert seeds["control"] == 5 and len(set(seeds.values())) == 3
    singles = [
        _control_rows(probe_all_layers(train, test, kind, hyper, seed=s, control_draws=1))
        for s in seeds.values()
    ]
    got = _control_rows(drawn)
    assert set(got) == set(singles[0])
    # the linear probe solves every draw in one batch (tolerance: the solver's)
    tol = 2e-3 if kind == "linear" else 1e-9
    for key, value in got.items():
        assert value == pytest.approx(np.mean([s[key] for s in singles]), abs=tol)
    one = probe_all_layers(train, test, kind, hyper, seed=5, control_draws=1)
    task = {k: v for k, v in by_key(drawn).items() if k[1] == "task" and "selectivity" not in k[2]}
    assert task == pytest.approx({k: by_key(one)[k] for k in task}, abs=tol)
    # the draws differ: one draw's control is not their mean
    assert any(abs(singles[0][k] - got[k]) > 1e-3 for k in got)
    with pytest.raises(ValueError, match="control_draws must be at least 1"):
        probe_all_layers(train, test, kind, hyper, seed=5, control_draws=0)
