"""Concatenate per-variant tidy TSVs into one table under results/tables/."""

from bioprobe.pipeline import tables
from bioprobe.pipeline.smk_support import run_script

COLUMNS = {
    "probes": tables.PROBE_COLUMNS,
    "probe_sweep": tables.PROBE_SWEEP_COLUMNS,
    "attention": tables.ATTENTION_COLUMNS,
    "erasure": tables.ERASURE_COLUMNS,
    "representation_similarity": tables.REPRESENTATION_SIMILARITY_COLUMNS,
}


def main(sm):
    tables.write_tsv(tables.concat_tsv(sm.input, COLUMNS[sm.params.table]), sm.output[0])


run_script(snakemake, main)  # noqa: F821
