"""One seeded order of the instruction set whose prefixes are the sizes (nested, as for tasks)."""

from bioprobe.instructions import write_instruction_subsets
from bioprobe.io import read_jsonl
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    records = read_jsonl(sm.input[0])
    write_instruction_subsets(records, int(sm.wildcards.seed), sm.output[0])
    print(f"seed {sm.wildcards.seed}: an order of {len(records)} instructions")


run_script(snakemake, main)  # noqa: F821
