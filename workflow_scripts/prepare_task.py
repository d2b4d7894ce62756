"""Read a task's raw splits, validate them and write the canonical JSONL + labels.json."""

from pathlib import Path

from bioprobe.data import prepare_task
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    prepare_task(sm.params.task, Path(sm.output.labels).parent, sm.wildcards.task)


run_script(snakemake, main)  # noqa: F821
