"""Fetch a Hub model (safetensors, config, tokenizer) into resources/hub/models/<id>/."""

from bioprobe.hub import allow_network

allow_network()  # the one rule that may reach the Hub; before huggingface_hub is imported

from bioprobe.hub import download_model  # noqa: E402
from bioprobe.pipeline.smk_support import run_script  # noqa: E402


def main(sm):
    hub = sm.params.hub
    files = download_model(
        hub["source"],
        sm.output[0],
        revision=hub["revision"],
        allow_pickle=hub["allow_pickle"],
        key=f"models.{sm.wildcards.model}",
    )
    print(f"{hub['source']}: {len(files)} files: {', '.join(files)}")


run_script(snakemake, main)  # noqa: F821
