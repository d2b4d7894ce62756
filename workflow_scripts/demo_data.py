"""Write the offline demo corpus (NER in BIO TSV, NLI in MedNLI JSONL)."""

from pathlib import Path

from bioprobe.data.demo import write_corpus
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    write_corpus(sm.params.kind, Path(sm.output.train).parent)


run_script(snakemake, main)  # noqa: F821
