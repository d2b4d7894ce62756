"""The BLURB table: each BLURB task's official test score, the category means and the BLURB
score of every run (bioprobe.blurb), from results/tables/downstream.tsv."""

import pandas as pd

from bioprobe.blurb import blurb_table
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import write_tsv


def main(sm):
    downstream = pd.read_csv(sm.input[0], sep="\t")
    write_tsv(blurb_table(downstream, sm.params.tasks), sm.output[0])


run_script(snakemake, main)  # noqa: F821
