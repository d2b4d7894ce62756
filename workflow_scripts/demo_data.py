"""Write the offline demo corpus (NER in BIO TSV, NLI in MedNLI JSONL)."""

from pathlib import Path

from bioprobe.data.demo import write_demo_ner, write_demo_nli
from bioprobe.smk_support import run_script


def main(sm):
    writer = write_demo_ner if sm.params.kind == "ner" else write_demo_nli
    writer(Path(sm.output.train).parent)


run_script(snakemake, main)  # noqa: F821
