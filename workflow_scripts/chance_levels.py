"""Chance levels of each task's class metrics, from its units in a pretrained dump."""

import logging

from bioprobe.chance import task_chance
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import write_tsv

log = logging.getLogger("bioprobe.chance_levels")


def main(sm):
    tasks = sm.params.tasks
    dumps = dict(zip(tasks, sm.input.dumps, strict=True))
    labels = dict(zip(tasks, sm.input.labels, strict=True))
    table = task_chance(dumps, labels, sm.params.splits)
    write_tsv(table, sm.output[0])
    for row in table.itertuples(index=False):
        log.info("%s %s %s: %.4f (%s)", row.task, row.split, row.metric, row.value, row.baseline)


run_script(snakemake, main)  # noqa: F821
