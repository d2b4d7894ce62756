"""Hub sources go through the local download rules; nothing else reaches the Hub."""

import yaml

from .conftest import ROOT, planned_jobs, snakemake, write_config


def test_paper_grid_downloads_hub_sources_first(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "-p", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    assert jobs["download_model"] == 4  # bert, biobert, gpt2-medium, biogpt
    assert jobs["download_dataset"] == 1  # jnlpba (tner/bionlp2004); MedNLI is local
    out = result.stdout
    # compute jobs read the downloaded copies, never a Hub id
    assert "input: resources/hub/datasets/jnlpba" in out  # prepare_task
    finetune = [b for b in out.split("\n\n") if "rule finetune:" in b]
    assert finetune and all("resources/hub/models/" in b for b in finetune)


def test_demo_needs_no_download(tmp_path):
    write_config(tmp_path, yaml.safe_load((ROOT / "config.yaml").read_text()))
    result = snakemake(tmp_path, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    assert jobs and not {"download_model", "download_dataset"} & set(jobs)
