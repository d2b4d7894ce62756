"""Draw the instruction-tuning figure (bioprobe.plotting.instruction) from the probes,
attention-similarity and representation-similarity tables."""

from pathlib import Path

from bioprobe.pipeline.smk_support import run_script
from bioprobe.plotting.instruction import plot_instruction_tuning


def main(sm):
    inputs = sm.input
    stem = Path(sm.output.png).with_suffix("")
    paths = plot_instruction_tuning(
        inputs.probes, inputs.attention, inputs.representation, stem, **sm.params.options
    )
    print(f"drew {', '.join(map(str, paths))}")


run_script(snakemake, main)  # noqa: F821
