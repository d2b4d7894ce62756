"""Concatenate every evaluation JSON into results/tables/downstream.tsv."""

from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import collect_downstream, write_tsv


def main(sm):
    write_tsv(collect_downstream(sm.input), sm.output[0])


run_script(snakemake, main)  # noqa: F821
