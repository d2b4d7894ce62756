"""Concatenate per-variant tidy TSVs into one table under results/tables/."""

from bioprobe.pipeline import tables
from bioprobe.pipeline.smk_support import run_script

COLUMNS = {
    "probes": tables.PROBE_COLUMNS,
    "attention": tables.ATTENTION_COLUMNS,
    "cka": tables.CKA_COLUMNS,
}


def main(sm):
    tables.write_tsv(tables.concat_tsv(sm.input, COLUMNS[sm.params.table]), sm.output[0])


run_script(snakemake, main)  # noqa: F821
