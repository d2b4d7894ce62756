"""Read and validate the instruction set (instructions:) into canonical records, one per line."""

from bioprobe.instructions import read_instructions
from bioprobe.io import write_jsonl
from bioprobe.pipeline.smk_support import run_script
from bioprobe.settings import InstructionSetSettings


def main(sm):
    entry = dict(sm.params.instructions)
    location = entry.pop("location")
    settings = InstructionSetSettings.from_config(entry, "instructions")
    records = read_instructions(
        location, settings.format, settings.fields, split=settings.split,
        revision=settings.revision,
    )  # fmt: skip
    with_input = sum(1 for r in records if r["input"].strip())
    write_jsonl(sm.output[0], records)
    print(f"{location}: {len(records)} instructions ({with_input} with an input)")


run_script(snakemake, main)  # noqa: F821
