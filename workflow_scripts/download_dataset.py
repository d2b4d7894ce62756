"""Fetch the parquet conversion of a Hub dataset's splits into resources/hub/datasets/<id>/."""

from bioprobe.hub import allow_network

allow_network()  # the one rule that may reach the Hub; before huggingface_hub is imported

from bioprobe.hub import download_dataset  # noqa: E402
from bioprobe.pipeline.smk_support import run_script  # noqa: E402


def main(sm):
    hub = sm.params.hub
    files = download_dataset(
        hub["path"],
        sm.output[0],
        hub["splits"],
        revision=hub["hub_revision"],
        key=f"tasks.{sm.wildcards.task}.splits",
    )
    print(f"{hub['path']}: {len(files)} files: {', '.join(files)}")


run_script(snakemake, main)  # noqa: F821
