"""The workflow end to end through `snakemake` on a tiny config: every table complete, nothing
left to do afterwards, and config changes that re-run exactly the stages that depend on them."""

import copy

import pandas as pd
import pytest

from .conftest import TINY_CONFIG, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

TASKS, MODELS = sorted(TINY_CONFIG["tasks"]), sorted(TINY_CONFIG["models"])


def table(workdir, name):
    return pd.read_csv(workdir / "results" / "tables" / f"{name}.tsv", sep="\t")


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
    ]
    test = df[df.split == "test"]
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
    cka = table(tiny_run, "cka")
    assert set(zip(cka.method, cka["size"], strict=True)) == {("random-init", 0), ("full", 50)}
    assert len(cka) == len(TASKS) * len(MODELS) * 2 * 3


def test_second_dry_run_schedules_nothing(tiny_run):
    result = snakemake(tiny_run, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result) == {}, result.stdout[-3000:]


def _changed(workdir, change):
    config = copy.deepcopy(TINY_CONFIG)
    change(config)
    write_config(workdir, config)
    try:
        result = snakemake(workdir, "-n", "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        return planned_jobs(result)
    finally:
        write_config(workdir, TINY_CONFIG)


def test_probe_setting_reruns_only_probes_and_their_tables(tiny_run):
    jobs = _changed(tiny_run, lambda c: c.setdefault("probe", {}).update(label_mode="bio"))
    readers = {"collect_probes", "plot_probes", "summarise", "plot_correlations", "all"}
    readers.add("render_table")  # the probe, summary and correlation tables as HTML
    assert set(jobs) == {"probe"} | readers
    assert jobs["probe"] == len(TASKS) * len(MODELS) * 3


def test_attention_setting_never_reruns_fine_tuning(tiny_run):
    jobs = _changed(tiny_run, lambda c: c["attention"].update(max_examples=4))
    assert "extract" in jobs and "attention_similarity" in jobs
    assert not {"finetune", "evaluate", "prepare_task", "subsample"} & set(jobs)


def test_report_holds_every_figure_and_table_with_its_caption(tiny_run):
    figures = sorted((tiny_run / "results" / "figures").glob("*.png"))
    assert {f.stem for f in figures} >= {
        "downstream",
        "probes",
        "attention_by_layer",
        "cka",
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
