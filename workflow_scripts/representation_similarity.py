"""Representation similarity per layer (CKA, Procrustes, SVCCA) between a variant and the
pretrained model on the same units."""

from bioprobe.analysis.dumpio import read_meta
from bioprobe.analysis.stages import similarity_rows
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import REPRESENTATION_SIMILARITY_COLUMNS, key_of, write_keyed_rows
from bioprobe.settings import CkaSettings


def main(sm):
    task_type = read_meta(sm.input.dump)["task_type"]
    cka = CkaSettings.from_config(sm.params.cka, "cka")
    rows = similarity_rows(sm.input.dump, sm.input.reference, cka, task_type)
    write_keyed_rows(rows, key_of(sm.wildcards), REPRESENTATION_SIMILARITY_COLUMNS, sm.output[0])


run_script(snakemake, main)  # noqa: F821
