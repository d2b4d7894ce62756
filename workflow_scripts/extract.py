"""Dump hidden states (pooled per probing unit) and attention maps of one variant."""

from bioprobe.analysis.extract import dump_variant
from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.settings import DumpSettings


def main(sm):
    dump_variant(
        job_context(sm),
        variant=sm.wildcards.method,
        settings=DumpSettings.from_config(sm.params.extract, "extract"),
        out_dir=sm.output[0],
    )


run_script(snakemake, main)  # noqa: F821
