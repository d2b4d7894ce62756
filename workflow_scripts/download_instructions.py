"""Fetch a Hub instruction set into resources/hub/instructions/ (its JSON file, or for format
hf its parquet conversion)."""

from bioprobe.hub import allow_network

allow_network()  # the one rule that may reach the Hub; before huggingface_hub is imported

from bioprobe.hub import download_instructions  # noqa: E402
from bioprobe.pipeline.smk_support import run_script  # noqa: E402


def main(sm):
    entry = sm.params.instructions
    files = download_instructions(
        entry["source"], sm.output[0], entry["format"], split=entry["split"],
        revision=entry["revision"],
    )  # fmt: skip
    print(f"{entry['source']}: {len(files)} files: {', '.join(files)}")


run_script(snakemake, main)  # noqa: F821
