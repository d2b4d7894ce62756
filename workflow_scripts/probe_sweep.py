"""The linear probe of one variant's dump along its complexity (C, rank); a tidy TSV keyed by
the variant."""

from bioprobe.analysis.stages import sweep_variant
from bioprobe.io import read_json
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import PROBE_SWEEP_COLUMNS, key_of, write_keyed_rows
from bioprobe.settings import ProbeSettings, ProbeSweepSettings


def main(sm):
    rows = sweep_variant(
        sm.input.dump,
        read_json(sm.input.labels),
        ProbeSettings.from_config(sm.params.probe, "probe"),
        ProbeSweepSettings.from_config(sm.params.sweep, "probe_sweep"),
        seed=int(sm.wildcards.seed),
        threads=sm.threads,
    )
    write_keyed_rows(rows, key_of(sm.wildcards), PROBE_SWEEP_COLUMNS, sm.output[0])


run_script(snakemake, main)  # noqa: F821
