"""One seeded, stratified permutation of the training split; sizes take its prefixes."""

from bioprobe.data import load_labels, load_split, write_subsets
from bioprobe.pipeline.smk_support import run_script


def main(sm):
    task_dir = sm.input.labels.rsplit("/", 1)[0]
    task_type = load_labels(task_dir)["task_type"]
    write_subsets(load_split(task_dir, "train"), task_type, int(sm.wildcards.seed), sm.output[0])


run_script(snakemake, main)  # noqa: F821
