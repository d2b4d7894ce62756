"""Summary and correlation tables against hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import permutation_test, spearmanr

from bioprobe.settings import PermutationSettings
from bioprobe.summary import (
    CORRELATION_COLUMNS,
    POOLED,
    correlation,
    correlations,
    holm,
    internal_measures,
    spearman_permutation_p,
    summary_table,
    task_metrics,
    to_markdown,
)

#: each task's headline downstream metric (the workflow passes its task type's main_metric)
MAIN = {"ner": "entity_f1", "nli": "macro_f1"}


def key(task, model, method, size, seed):
    return {"task": task, "model": model, "method": method, "size": size, "seed": seed}


@pytest.fixture
def tables():
    """One NER task, one pair task, one model, full fine-tuning at 10 and 100 %, seeds 1-2."""
    down, probes, att, sim = [], [], [], []
    scores = {  # (task, size, seed) -> main score
        ("ner", 10, 1): 0.6,
        ("ner", 10, 2): 0.8,
        ("ner", 100, 1): 0.9,
        ("ner", 100, 2): 0.7,
        ("nli", 10, 1): 0.5,
        ("nli", 10, 2): 0.5,
        ("nli", 100, 1): 0.75,
        ("nli", 100, 2): 0.65,
    }
    for (task, size, seed), score in scores.items():
        k = key(task, "m", "full", size, seed)
        main, other = ("entity_f1", "token_macro_f1") if task == "ner" else ("macro_f1", "accuracy")
        down += [
            {**k, "split": "test", "metric": main, "value": score},
            {**k, "split": "test", "metric": other, "value": 0.0},
            {**k, "split": "validation", "metric": main, "value": 0.0},
        ]
        # probe: layers 0..2, peak at layer 1 = score, last layer = score - 0.1
        for layer, value in enumerate([0.2, score, score - 0.1]):
            for target, v in (("task", value), ("control", 0.1)):
                probes.append(
                    {**k, "layer": layer, "probe": "linear", "target": target}
                    | {"metric": "macro_f1", "value": v}
                )
            probes.append(
                {**k, "layer": layer, "probe": "linear", "target": "task"}
                | {"metric": "selectivity_macro_f1", "value": value - 0.1}
            )
            probes.append(
                {**k, "layer": layer, "probe": "mlp", "target": "task"}
                | {"metric": "macro_f1", "value": 1.0}
            )
            sim.append({**k, "layer": layer, "metric": "cka", "value": 1.0 - size / 1000 * layer})
            sim.append({**k, "layer": layer, "metric": "procrustes", "value": 1.5})  # not CKA
        for layer in (1, 2):
            for head in (1, 2):
                att.append(
                    {
                        **k,
                        "layer": layer,
                        "head": head,
                        "metric": "cosine",
                        "value": 1 - size / 1000,
                    }
                )
                att.append({**k, "layer": layer, "head": head, "metric": "entropy", "value": 9.0})
    # pretrained (size 0) and random-init variants
    for task in ("ner", "nli"):
        for seed in (1, 2):
            pk = key(task, "m", "pretrained", 0, seed)
            metric = "entity_f1" if task == "ner" else "macro_f1"
            down.append({**pk, "split": "test", "metric": metric, "value": 0.05})
            rk = key(task, "m", "random-init", 0, seed)
            for layer in range(3):
                probes.append(
                    {**rk, "layer": layer, "probe": "linear", "target": "task"}
                    | {"metric": "macro_f1", "value": 0.3}
                )
                sim.append({**rk, "layer": layer, "metric": "cka", "value": 0.2})
    return {
        "downstream": pd.DataFrame(down),
        "probes": pd.DataFrame(probes),
        "attention": pd.DataFrame(att),
        "similarity": pd.DataFrame(sim),
    }


def test_task_metrics():
    assert task_metrics(MAIN, ["nli", "ner", "nli"], "main_metrics") == MAIN
    assert task_metrics("macro_f1", ["b", "a"], "x") == {"a": "macro_f1", "b": "macro_f1"}
    with pytest.raises(ValueError, match=r"main_metrics gives no metric for task.*other"):
        task_metrics(MAIN, ["ner", "other"], "main_metrics")


def test_main_metric_missing_from_downstream_names_task(tables):
    with pytest.raises(ValueError, match=r"no 'pearson' rows for task 'nli'.*accuracy, macro_f1"):
        internal_measures(tables["downstream"], main_metrics={**MAIN, "nli": "pearson"})


def test_probe_metric_per_task(tables):
    m = internal_measures(
        tables["downstream"],
        tables["probes"],
        main_metrics=MAIN,
        probe_metrics={"ner": "macro_f1", "nli": "accuracy"},  # nli has no accuracy probe rows
    )
    ner = m[(m["task"] == "ner") & (m["size"] == 10) & (m["seed"] == 2)].iloc[0]
    assert ner["probe_best"] == pytest.approx(0.8)
    assert m.loc[m["task"] == "nli", "probe_best"].isna().all()
    assert m.attrs["probe_metrics"] == {"ner": "macro_f1", "nli": "accuracy"}


def test_internal_measures(tables):
    m = internal_measures(
        tables["downstream"],
        tables["probes"],
        tables["attention"],
        tables["similarity"],
        main_metrics=MAIN,
    )
    assert len(m) == 8  # fine-tuned variants only
    assert set(m["method"]) == {"full"}
    row = m[(m["task"] == "ner") & (m["size"] == 10) & (m["seed"] == 2)].iloc[0]
    assert row["metric"] == "entity_f1"
    assert row["downstream"] == pytest.approx(0.8)
    assert row["probe_best"] == pytest.approx(0.8)
    assert row["probe_best_layer"] == 1
    assert row["probe_last"] == pytest.approx(0.7)
    assert row["attention_similarity"] == pytest.approx(0.99)  # cosine only, not entropy
    assert row["cka"] == pytest.approx((1.0 + 0.99 + 0.98) / 3)
    # each similarity measure is its own column, from its own rows; one the table lacks is NaN
    assert row["procrustes"] == pytest.approx(1.5)
    assert m["svcca"].isna().all()
    assert set(m.loc[m["task"] == "nli", "metric"]) == {"macro_f1"}
    with_pre = internal_measures(
        tables["downstream"], tables["probes"], main_metrics=MAIN, include_pretrained=True
    )
    pre = with_pre[with_pre["method"] == "pretrained"]
    assert len(pre) == 4
    assert pre["attention_similarity"].isna().all() and pre["cka"].isna().all()


def test_internal_measures_optional_tables(tables):
    m = internal_measures(tables["downstream"], main_metrics=MAIN)
    measures = ["probe_best", "probe_last", "attention_similarity", "cka", "procrustes", "svcca"]
    assert m[measures].isna().all().all()
    with pytest.raises(ValueError, match="downstream table is missing"):
        internal_measures(None, main_metrics=MAIN)
    with pytest.raises(ValueError, match="downstream table has no rows for split 'dev'"):
        internal_measures(tables["downstream"], main_metrics=MAIN, split="dev")
    with pytest.raises(ValueError, match="probes table lacks columns"):
        internal_measures(tables["downstream"], tables["similarity"], main_metrics=MAIN)
    old_cka = tables["similarity"].drop(columns="metric")  # a cka.tsv from before the measures
    with pytest.raises(ValueError, match=r"representation_similarity table lacks.*'metric'"):
        internal_measures(tables["downstream"], similarity=old_cka, main_metrics=MAIN)


def test_internal_measures_reads_tsv(tables, tmp_path):
    path = tmp_path / "downstream.tsv"
    tables["downstream"].to_csv(path, sep="\t", index=False)
    m = internal_measures(path, main_metrics=MAIN)
    assert len(m) == 8


def test_correlation_hand_computed():
    # ranks equal values; d = [1, -1, 1, -1, 0]: rho = 1 - 6 * 4 / (5 * 24) = 0.8
    res = correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert res["n"] == 5
    assert res["spearman_rho"] == pytest.approx(0.8)
    assert res["pearson_r"] == pytest.approx(0.8)
    # exact two-sided p: of the 120 pairings of 5 ranks, 8 have rho >= 0.8 (sum d^2 <= 4: the
    # identity, 4 adjacent swaps, 3 pairs of disjoint adjacent swaps) and 8 have rho <= -0.8
    assert res["spearman_p_permutation"] == pytest.approx(16 / 120)
    # a perfect rho on 3 points: 2 of the 6 pairings are as extreme (scipy's t says p = 0)
    assert correlation([1, 2, 3], [1, 2, 3])["spearman_p_permutation"] == pytest.approx(1 / 3)
    # ties: x = [1, 1, 2, 3] -> ranks [1.5, 1.5, 3, 4]; y monotone -> rho = Pearson of ranks
    res = correlation([1, 1, 2, 3], [1, 2, 3, 4])
    rx, ry = np.array([1.5, 1.5, 3, 4]), np.array([1, 2, 3, 4])
    assert res["spearman_rho"] == pytest.approx(np.corrcoef(rx, ry)[0, 1])


def _enumerated_p(x, y) -> float:
    """Two-sided p by enumerating every pairing: the share with |rho| >= the observed one."""
    observed = abs(spearmanr(x, y).statistic)
    rhos = [abs(spearmanr(x, perm).statistic) for perm in itertools.permutations(y)]
    return float(np.mean(np.array(rhos) >= observed - 1e-12))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_p_is_exact_enumeration_for_five_points(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=5), rng.integers(0, 3, size=5).astype(float)  # ties in y
    if np.ptp(y) == 0:
        y[0] += 1
    got = correlation(x, y)["spearman_p_permutation"]
    assert got == pytest.approx(_enumerated_p(x, y))


def test_permutation_p_above_the_exact_limit_is_seeded_monte_carlo():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=1.5, size=12)
    settings = PermutationSettings(resamples=2000, seed=7)
    p1 = spearman_permutation_p(x, y, settings)
    assert p1 == spearman_permutation_p(x, y, settings)  # seeded: reproducible
    # scipy's reference: permutation_test of spearmanr's |rho| itself, same draws
    reference = permutation_test(
        (x,),
        lambda xs: abs(spearmanr(xs, y).statistic),
        permutation_type="pairings",
        n_resamples=2000,
        alternative="greater",
        rng=np.random.default_rng(7),
    ).pvalue
    assert p1 == pytest.approx(reference)
    # and the t approximation agrees roughly at n = 12
    assert p1 == pytest.approx(spearmanr(x, y).pvalue, abs=0.03)


def test_holm_worked_example():
    # p sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> the
    # running maximum keeps 0.06); NaN is no test and does not count in m
    adjusted = holm([0.01, 0.04, 0.03, np.nan, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.4, 0.6]), [0.8, 0.8])  # capped monotone, <= 1
    np.testing.assert_allclose(holm([0.7, 0.9]), [1.0, 1.0])


def test_correlation_undefined_cases():
    res = correlation([1, 2], [2, 1])
    assert res["n"] == 2 and math.isnan(res["spearman_rho"]) and math.isnan(res["pearson_p"])
    res = correlation([1, 1, 1, 1], [1, 2, 3, 4])
    assert res["n"] == 4 and math.isnan(res["spearman_rho"])
    res = correlation([1, 2, np.nan, 4, 5], [1, 2, 3, np.nan, 5])
    assert res["n"] == 3 and res["spearman_rho"] == pytest.approx(1.0)


def test_correlations_table():
    df = pd.DataFrame(
        {
            "task": ["a"] * 8 + ["b"] * 2,
            "model": ["m"] * 4 + ["n"] * 4 + ["m"] * 2,
            "downstream": [1, 2, 3, 4, 11, 12, 13, 14, 0.1, 0.2],
            # within each model the measure falls as the score rises; across models it rises
            "probe_best": [4, 3, 2, 1, 14, 13, 12, 11, 1, 2],
            "cka": [1, 2, 3, 4, 1, 2, 3, 4, 7, 7],
        }
    )
    c = correlations(df)
    assert list(c.columns) == list(CORRELATION_COLUMNS)
    assert list(c.columns[:3]) == ["measure", "task", "model"]
    assert list(zip(c["measure"], c["task"], c["model"], strict=True)) == [
        ("probe_best", "a", "m"),
        ("probe_best", "a", "n"),
        ("probe_best", "a", POOLED),
        ("probe_best", "b", "m"),
        ("probe_best", "b", POOLED),
        ("cka", "a", "m"),
        ("cka", "a", "n"),
        ("cka", "a", POOLED),
        ("cka", "b", "m"),
        ("cka", "b", POOLED),
    ]
    get = c.set_index(["measure", "task", "model"])
    # per model the measure tracks the score negatively; pooling the two models reverses it
    assert get.loc[("probe_best", "a", "m"), "spearman_rho"] == pytest.approx(-1.0)
    assert get.loc[("probe_best", "a", "n"), "spearman_rho"] == pytest.approx(-1.0)
    assert get.loc[("probe_best", "a", POOLED), "spearman_rho"] > 0.5
    assert get.loc[("probe_best", "a", POOLED), "n"] == 8
    assert get.loc[("cka", "a", "m"), "spearman_rho"] == pytest.approx(1.0)
    assert get.loc[("probe_best", "b", "m"), "n"] == 2
    assert math.isnan(get.loc[("probe_best", "b", "m"), "spearman_rho"])
    assert "all" not in set(c["task"])  # tasks score on different metrics: never pooled
    # Holm over each task's family: task a has 6 defined correlations, task b none
    family = c[c["task"] == "a"]
    np.testing.assert_allclose(family["spearman_p_holm"], holm(family["spearman_p_permutation"]))
    assert family["spearman_p_holm"].notna().sum() == 6
    assert c.loc[c["task"] == "b", "spearman_p_holm"].isna().all()
    with pytest.raises(ValueError, match="lacks columns"):
        correlations(df, measures=["nope"])


def test_summary_table(tables):
    s = summary_table(
        tables["downstream"],
        tables["probes"],
        tables["attention"],
        tables["similarity"],
        main_metrics=MAIN,
    )
    assert list(s.columns) == [
        "task",
        "model",
        "method",
        "size",
        "metric",
        "score_mean",
        "ci_low",
        "ci_high",
        "score_std",
        "n_seeds",
        "best_layer",
        "probe_score",
        "selectivity",
        "attention_similarity",
        "cka",
        "procrustes",
        "svcca",
    ]  # no prompting method: no comparison columns
    # 2 tasks × (random-init, pretrained, full 10, full 100)
    assert len(s) == 8
    row = s[(s["task"] == "ner") & (s["method"] == "full") & (s["size"] == 10)].iloc[0]
    assert row["metric"] == "entity_f1"
    assert row["score_mean"] == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert row["score_std"] == pytest.approx(math.sqrt(((0.6 - 0.7) ** 2 + (0.8 - 0.7) ** 2) / 1))
    assert row["n_seeds"] == 2
    assert row["best_layer"] == 1
    assert row["probe_score"] == pytest.approx(0.7)  # seed mean at layer 1
    assert row["selectivity"] == pytest.approx(0.6)  # selectivity_macro_f1 there
    assert row["attention_similarity"] == pytest.approx(0.99)
    assert row["cka"] == pytest.approx(0.99)
    nli = s[(s["task"] == "nli") & (s["method"] == "full") & (s["size"] == 10)].iloc[0]
    assert nli["metric"] == "macro_f1" and nli["score_std"] == pytest.approx(0.0)
    rnd = s[(s["task"] == "ner") & (s["method"] == "random-init")].iloc[0]
    assert math.isnan(rnd["score_mean"]) and rnd["probe_score"] == pytest.approx(0.3)
    assert rnd["cka"] == pytest.approx(0.2)
    pre = s[(s["task"] == "ner") & (s["method"] == "pretrained")].iloc[0]
    assert pre["score_mean"] == pytest.approx(0.05) and math.isnan(pre["cka"])


def test_summary_table_downstream_only(tables):
    s = summary_table(tables["downstream"], main_metrics=MAIN)
    assert len(s) == 6  # no random-init rows without the tables that have them
    assert s["best_layer"].isna().all() and s["cka"].isna().all()
    assert s["ci_low"].isna().all()  # a table without intervals: NaN


def test_summary_table_puts_the_mean_interval_next_to_the_seed_sd(tables):
    down = tables["downstream"].copy()
    is_test = down["split"] == "test"
    down["ci_low"] = np.where(is_test, down["value"] - 0.1, np.nan)
    down["ci_high"] = np.where(is_test, down["value"] + 0.2, np.nan)
    s = summary_table(down, main_metrics=MAIN)
    row = s[(s["task"] == "ner") & (s["method"] == "full") & (s["size"] == 10)].iloc[0]
    # seeds 0.6 and 0.8: mean 0.7, their intervals [0.5, 0.8] and [0.7, 1.0] average to
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.6), pytest.approx(0.9))
    assert row["score_std"] == pytest.approx(math.sqrt(0.02)) and row["n_seeds"] == 2
    cols = list(s.columns)
    assert cols[cols.index("score_mean") :][:5] == [
        "score_mean",
        "ci_low",
        "ci_high",
        "score_std",
        "n_seeds",
    ]


def prompting_table() -> pd.DataFrame:
    """One NER task, two models, two seeds. Model m: full fine-tuning with seed means 0.46
    (one seed above prompting), 0.65, 0.9 at sizes 10, 30, 100; LoRA 0.3, 0.5, 0.58, never
    above; prompting zero-shot 0.6 and few-shot-2 0.5. Model m2: full only, no prompting."""
    means = {
        ("m", "full"): {10: (0.3, 0.62), 30: (0.6, 0.7), 100: (0.9, 0.9)},
        ("m", "lora"): {10: (0.3, 0.3), 30: (0.5, 0.5), 100: (0.58, 0.58)},
        ("m", "zero-shot"): {0: (0.55, 0.65)},
        ("m", "few-shot-2"): {0: (0.5, 0.5)},
        ("m", "pretrained"): {0: (0.05, 0.05)},
        ("m2", "full"): {10: (0.2, 0.2), 100: (0.8, 0.8)},
        ("m2", "pretrained"): {0: (0.05, 0.05)},
    }
    rows = [
        {**key("ner", model, method, size, seed), "split": "test"}
        | {"metric": "entity_f1", "value": value}
        for (model, method), by_size in means.items()
        for size, values in by_size.items()
        for seed, value in zip((1, 2), values, strict=True)
    ]
    return pd.DataFrame(rows)


PROMPTING = ["few-shot-2", "zero-shot"]


def test_summary_table_compares_fine_tuning_with_the_best_prompting():
    s = summary_table(prompting_table(), main_metrics=MAIN, prompting=PROMPTING)
    m = s[s["model"] == "m"]
    assert set(m["best_prompting"]) == {"zero-shot"}  # on every row of the task × model
    assert m["prompting_score"].to_numpy() == pytest.approx([0.6] * len(m))
    by_method = m.groupby("method")["beats_prompting_from"].unique().to_dict()
    # full's seed mean at 10 (0.46) is under 0.6 though one seed is above: from 30
    assert list(by_method["full"]) == [30]
    assert by_method["lora"][0] is pd.NA  # never above
    for method in ("pretrained", "zero-shot", "few-shot-2"):  # not fine-tuned: NA
        assert by_method[method][0] is pd.NA
    # the prompting rows are variants of the table, at size 0, with their scores
    zero = m[m["method"] == "zero-shot"].iloc[0]
    assert zero["size"] == 0 and zero["score_mean"] == pytest.approx(0.6)
    # a model without prompting runs: the three columns NA
    m2 = s[s["model"] == "m2"]
    assert len(m2) == 3
    assert m2[["best_prompting", "prompting_score", "beats_prompting_from"]].isna().all().all()
    assert s["beats_prompting_from"].dtype == "Int64"


def test_summary_without_prompting_runs_has_the_columns_empty(tables):
    s = summary_table(tables["downstream"], main_metrics=MAIN, prompting=PROMPTING)
    assert s[["best_prompting", "prompting_score", "beats_prompting_from"]].isna().all().all()
    assert "<NA>" not in to_markdown(s)


def test_a_grid_without_prompting_methods_has_no_prompting_columns(tables):
    s = summary_table(tables["downstream"], main_metrics=MAIN)
    assert not {"best_prompting", "prompting_score", "beats_prompting_from"} & set(s.columns)


def test_prompting_runs_are_not_fine_tuned_runs():
    down = prompting_table()
    m = internal_measures(down, main_metrics=MAIN, prompting=PROMPTING, include_pretrained=True)
    assert set(m["method"]) == {"full", "lora", "pretrained"}
    c = correlations(m.assign(cka=m["downstream"]), measures=["cka"])
    assert c.loc[c["model"] == "m", "n"].item() == 14  # 2 methods x 3 sizes x 2 seeds + pretrained
    # a size-0 method not named as prompting would pass for fine-tuning: an error naming it
    for call in (internal_measures, summary_table):
        with pytest.raises(ValueError, match=r"size-0 rows of method\(s\) few-shot-2, zero-shot"):
            call(down, main_metrics=MAIN)


def test_to_markdown(tables):
    s = summary_table(tables["downstream"], tables["probes"], main_metrics=MAIN)
    md = to_markdown(s)
    lines = md.splitlines()
    assert lines[0].startswith("| task")
    assert "score_mean" in lines[0]
    assert len(lines) == 2 + len(s)
    assert "0.700" in md and "0.141" in md
    assert "nan" not in md.lower() and "<NA>" not in md
    assert to_markdown(pd.DataFrame({"x": [1 / 3]})).splitlines()[2] == "| 0.333 |"
