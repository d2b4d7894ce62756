"""Linear CKA per layer between a variant and the pretrained model on the same units."""

from bioprobe.analysis.stages import cka_rows
from bioprobe.io import read_json
from bioprobe.smk_support import run_script
from bioprobe.tables import CKA_COLUMNS, key_of, write_keyed_rows


def main(sm):
    task_type = read_json(sm.input.labels)["task_type"]
    c = sm.params.cka
    rows = cka_rows(sm.input.dump, sm.input.reference, c["split"], task_type, c["pair_mode"])
    write_keyed_rows(rows, key_of(sm.wildcards), CKA_COLUMNS, sm.output[0])


run_script(snakemake, main)  # noqa: F821
