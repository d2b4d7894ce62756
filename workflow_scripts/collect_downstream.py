"""Concatenate every evaluation JSON into results/tables/downstream.tsv, each test score with
its bootstrap confidence interval from the run's predictions."""

from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import collect_downstream, write_tsv
from bioprobe.settings import BootstrapSettings


def main(sm):
    bootstrap = BootstrapSettings.from_config(sm.params.bootstrap, "statistics.bootstrap")
    table = collect_downstream(sm.input.evaluations, sm.input.predictions, bootstrap)
    write_tsv(table, sm.output[0])


run_script(snakemake, main)  # noqa: F821
