"""Planning without running: the paper's grid, and missing credentialed data."""

import yaml

from .conftest import ROOT, planned_jobs, snakemake, write_config


def test_paper_grid_plans_without_mednli(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    # 2 tasks x 4 models x 4 non-zero sizes x 3 seeds fine-tunings, each scoring its model;
    # the evaluate rule scores only the published models (size 0)
    assert jobs["finetune"] == 2 * 4 * 4 * 3
    assert jobs["evaluate"] == 2 * 4 * 3
    assert "resources/mednli" in result.stderr  # the warning names the missing directory


def test_real_run_stops_before_any_job_when_data_is_missing(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--cores", "2")
    assert result.returncode != 0
    assert "config key 'tasks.mednli.path'" in result.stdout + result.stderr
    assert "credentialed" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
