"""Dump hidden states (pooled per probing unit) and attention maps of one variant."""

from pathlib import Path

from bioprobe.analysis.extract import DumpSettings, dump_variant
from bioprobe.models import resolve_model
from bioprobe.smk_support import run_script


def main(sm):
    s = dict(sm.params.extract)
    settings = DumpSettings(
        **{**s, "pair_modes": tuple(s["pair_modes"]), "splits": tuple(s["splits"])}
    )
    dump_variant(
        task_dir=Path(sm.input.labels).parent,
        method=sm.wildcards.method,
        seed=int(sm.wildcards.seed),
        model_location=sm.params.location,
        spec=resolve_model(sm.wildcards.model, sm.params.model),
        settings=settings,
        out_dir=sm.output[0],
        base_location=sm.params.base,
        attempt=int(sm.resources.attempt),
    )


run_script(snakemake, main)  # noqa: F821
