"""A collected table as an HTML page to read in the report, its caption above it."""

import logging
from pathlib import Path

from bioprobe.pipeline.smk_support import run_script
from bioprobe.plotting.htmltable import write_table_html

log = logging.getLogger("bioprobe.render_table")


def main(sm):
    caption = Path(sm.input.caption).read_text(encoding="utf-8")
    out = write_table_html(sm.input.table, sm.output[0], title=sm.params.title, caption_rst=caption)
    log.info("%s -> %s", sm.input.table, out)


run_script(snakemake, main)  # noqa: F821
