"""Attention entropy per head; cosine and JS divergence against the pretrained variant."""

from bioprobe.analysis.stages import attention_rows
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import ATTENTION_COLUMNS, key_of, write_keyed_rows


def main(sm):
    rows = attention_rows(sm.input.dump, sm.input.get("reference"))
    write_keyed_rows(rows, key_of(sm.wildcards), ATTENTION_COLUMNS, sm.output[0])


run_script(snakemake, main)  # noqa: F821
