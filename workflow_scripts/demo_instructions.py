"""Write the demo's instruction set (bioprobe.instructions.demo): offline and deterministic."""

from bioprobe.instructions import write_demo_instructions
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    path = write_demo_instructions(sm.output[0])
    print(f"wrote the demo instruction set {path}")


run_script(snakemake, main)  # noqa: F821
