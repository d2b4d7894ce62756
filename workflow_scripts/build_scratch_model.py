"""A tiny random-weight model with a tokenizer trained on the task's training text."""

from bioprobe.data.prepare import corpus_text
from bioprobe.models import build_scratch
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    scratch = sm.params.model["scratch"]
    build_scratch(scratch, corpus_text(sm.input.train), sm.output[0], seed=scratch["seed"])


run_script(snakemake, main)  # noqa: F821
