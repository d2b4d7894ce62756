"""The workflow end to end through `snakemake` on a tiny config: every table complete, nothing
left to do afterwards, and config changes that re-run exactly the stages that depend on them."""

import copy

import pytest

from bioprobe.config import validate_config
from bioprobe.io import read_json
from bioprobe.pipeline import grid
from bioprobe.pipeline.tables import KEY, PROBE_SWEEP_COLUMNS
from bioprobe.predictions import rescore
from bioprobe.settings import ProbeSweepSettings

from .conftest import TINY_RUN_CONFIG, planned_jobs, snakemake, table, write_config

pytestmark = pytest.mark.workflow

TASKS, MODELS = sorted(TINY_RUN_CONFIG["tasks"]), sorted(TINY_RUN_CONFIG["models"])


def test_downstream_table_covers_the_grid(tiny_run):
    df = table(tiny_run, "downstream")
    assert list(df.columns) == [
        "task",
        "model",
        "method",
        "size",
        "seed",
        "split",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    ]
    test = df[df.split == "test"]
    # every test score has its bootstrap interval, from the run's predictions file
    assert (test.ci_low <= test.ci_high).all() and test.ci_low.between(-1, 1).all()
    assert df[df.split == "validation"].ci_low.isna().all()
    for run in df[KEY].drop_duplicates().itertuples(index=False):
        evaluation = tiny_run / grid.EVAL_JSON.format(**run._asdict())
        predictions = tiny_run / grid.PREDICTIONS_JSON.format(**run._asdict())
        assert rescore(predictions) == read_json(evaluation)["scores"]
    for task, metric in (("demo-ner", "entity_f1"), ("demo-nli", "macro_f1")):
        got = test[(test.task == task) & (test.metric == metric)]
        assert set(zip(got.model, got.method, got["size"], strict=True)) == {
            (m, meth, s) for m in MODELS for meth, s in (("pretrained", 0), ("full", 50))
        }
    assert df.value.between(0, 1).all()


def test_analysis_tables_cover_every_variant_layer_and_head(tiny_run):
    variants = {("pretrained", 0), ("random-init", 0), ("full", 50)}
    probes = table(tiny_run, "probes")
    assert len(probes.groupby(["task", "model"])) == len(TASKS) * len(MODELS)
    for _, group in probes.groupby(["task", "model"]):
        assert set(zip(group.method, group["size"], strict=True)) == variants
        assert set(group.layer) == {0, 1, 2}
        assert set(group.target) == {"task", "control"}
    attention = table(tiny_run, "attention_similarity")
    assert set(attention.layer) == {1, 2} and set(attention["head"]) == {1, 2}
    compared = attention[attention.method != "pretrained"]
    assert {"cosine", "js_divergence", "entropy"} <= set(compared.metric)
    similarity = table(tiny_run, "representation_similarity")
    assert set(zip(similarity.method, similarity["size"], strict=True)) == {
        ("random-init", 0),
        ("full", 50),
    }
    assert set(similarity.metric) == {"cka", "procrustes", "svcca"}
    assert len(similarity) == len(TASKS) * len(MODELS) * 2 * 3 * 3  # variants, layers, metrics
    procrustes = similarity[similarity.metric == "procrustes"].value.dropna()
    assert procrustes.between(0, 1.5708).all()


def test_second_dry_run_schedules_nothing(tiny_run):
    result = snakemake(tiny_run, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result) == {}, result.stdout[-3000:]


def test_planning_prints_the_dumps_disk_as_the_run_wrote_it(tiny_run):
    """The plan-time estimate (bioprobe.analysis.disk) against the dumps on disk: the hidden
    states to the rounding of the printed MB, the attention maps within a factor of two
    (their token counts are estimated from the words: 1.4 tokens a word, and the scratch
    models' 500-piece vocabularies cut words finer)."""
    import re

    result = snakemake(tiny_run, "-n", "--cores", "2")
    line = next(x for x in result.stderr.splitlines() if "the dumps of this grid" in x)
    found = re.search(r"hidden states ([\d.]+) MB, attention maps ([\d.]+) MB", line)
    assert found, line
    dumps = tiny_run / "results" / "dumps"
    attention = sum(p.stat().st_size for p in dumps.rglob("attention.npy"))
    hidden = sum(p.stat().st_size for p in dumps.rglob("*.npy")) - attention
    assert float(found[1]) == pytest.approx(hidden / 1e6, abs=0.06)
    assert 0.5 < float(found[2]) / (attention / 1e6) < 2


def _changed(workdir, change):
    config = copy.deepcopy(TINY_RUN_CONFIG)
    change(config)
    write_config(workdir, config)
    try:
        result = snakemake(workdir, "-n", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        return planned_jobs(result)
    finally:
        write_config(workdir, TINY_RUN_CONFIG)


def test_probe_setting_reruns_only_probes_and_their_tables(tiny_run):
    jobs = _changed(tiny_run, lambda c: c.setdefault("probe", {}).update(label_mode="bio"))
    readers = {"collect_probes", "plot_probes", "plot_probes_mdl", "summarise", "all"}
    readers.add("plot_correlations")
    readers.add("render_table")  # the probe, summary and correlation tables as HTML
    readers |= {"collect_probe_sweep", "plot_probe_sweep"}  # the sweep probes the same labels
    assert set(jobs) == {"probe", "probe_sweep"} | readers
    assert jobs["probe"] == len(TASKS) * len(MODELS) * 3
    assert jobs["probe_sweep"] == len(TASKS) * len(MODELS) * 2  # probe_sweep.sizes: [0]


def test_attention_setting_never_reruns_fine_tuning(tiny_run):
    jobs = _changed(tiny_run, lambda c: c["attention"].update(max_examples=4))
    assert "extract" in jobs and "attention_similarity" in jobs
    assert not {"finetune", "evaluate", "prepare_task", "subsample"} & set(jobs)


def test_report_holds_every_figure_and_table_with_its_caption(tiny_run):
    figures = sorted((tiny_run / "results" / "figures").glob("*.png"))
    assert {f.stem for f in figures} >= {
        "downstream",
        "probes",
        "probes_mdl",
        "probe_sweep",
        "attention_by_layer",
        "cka",
        "procrustes",
        "svcca",
        "correlations",
        *(f"attention_heatmap_{t}" for t in TASKS),
    }
    assert all(f.with_suffix(".pdf").stat().st_size > 1000 for f in figures)
    for name in ("report.html", "report.zip"):
        result = snakemake(tiny_run, "--report", name)
        assert result.returncode == 0, result.stderr[-4000:]
        assert (tiny_run / name).stat().st_size > 10_000
    html = (tiny_run / "report.html").read_text(errors="replace")
    for figure in figures:
        assert figure.name in html
    for table_name in ("downstream.tsv", "probes.tsv", "summary.tsv", "correlations.tsv"):
        assert table_name in html
    # a caption from report/ for each category, not just the file names
    assert "paper's central claim made measurable" in html
    assert "control task" in html
    assert "Angular Procrustes distance (Williams et al. 2021)" in html  # the caption per measure


def test_erasure_table_covers_every_fine_tuned_run_layer_and_eraser(tiny_run):
    erasure = table(tiny_run, "erasure")
    assert list(erasure.columns) == [*KEY, "layer", "target", "metric", "value"]
    assert set(zip(erasure.method, erasure["size"], strict=True)) == {("full", 50)}
    for (task, _model), group in erasure.groupby(["task", "model"]):
        assert set(group.layer) == {0, 1, 2} and set(group.target) == {"task", "control"}
        main = {"demo-ner": "entity_f1", "demo-nli": "macro_f1"}[task]
        drops = group[group.metric == f"{main}_drop"]
        assert len(drops) == 3 * 2 and drops.value.between(-1, 1).all()
        # a LEACE eraser removes at most (classes - 1) directions; its control as many
        ranks = group[group.metric == "rank"].pivot(index="layer", columns="target", values="value")
        assert (ranks["task"] == ranks["control"]).all()
    # erased score + drop = the unerased score: the run's own test score, scored the same way
    on = [*KEY, "layer", "target", "metric"]
    mains = erasure[erasure.metric.isin(["entity_f1", "macro_f1"])]
    drops = erasure[erasure.metric.isin(["entity_f1_drop", "macro_f1_drop"])]
    drops = drops.assign(metric=drops.metric.str.removesuffix("_drop"))
    got = mains.merge(drops, on=on, suffixes=("", "_drop"))
    test = table(tiny_run, "downstream").query("split == 'test'")
    got = got.merge(test[[*KEY, "metric", "value"]], on=[*KEY, "metric"], suffixes=("", "_run"))
    assert len(got) == len(drops) == len(erasure.groupby(KEY)) * 3 * 2
    assert ((got.value + got.value_drop) - got.value_run).abs().max() < 1e-6
    assert (tiny_run / "results" / "figures" / "erasure.png").stat().st_size > 10_000


def test_probe_sweep_covers_the_size_0_variants_and_matches_the_default_probe(tiny_run):
    sweep = table(tiny_run, "probe_sweep")
    assert list(sweep.columns) == PROBE_SWEEP_COLUMNS
    assert set(zip(sweep.method, sweep["size"], strict=True)) == {
        ("pretrained", 0),
        ("random-init", 0),
    }
    settings = set(zip(sweep.complexity, sweep.setting, strict=True))
    default = ProbeSweepSettings()
    assert settings == {("C", c) for c in default.C} | {("rank", r) for r in default.rank}
    assert set(sweep.target) == {"task", "control", "selectivity"}
    # the default C's rows are the linear probe's own (the same objective, labels and splits;
    # solved from another start, so near-ties may fall the other way)
    default_c = validate_config(copy.deepcopy(TINY_RUN_CONFIG))["probe"]["linear"]["C"]
    probes = table(tiny_run, "probes")
    probes = probes[(probes.probe == "linear") & (probes.metric == "macro_f1")]
    at_default = sweep[(sweep.complexity == "C") & (sweep.setting == default_c)]
    at_default = at_default[
        (at_default.metric == "macro_f1") & (at_default.target != "selectivity")
    ]
    merged = probes.merge(at_default, on=[*KEY, "layer", "target", "metric"])
    assert len(merged) == len(at_default) > 0
    diff = (merged.value_x - merged.value_y).abs()
    assert diff.median() < 0.01 and diff.max() < 0.1
