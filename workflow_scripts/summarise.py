"""Per-run internal measures, their correlations with downstream scores, and the summary table
(TSV and Markdown)."""

from pathlib import Path

from bioprobe import summary
from bioprobe.pipeline.smk_support import run_script
from bioprobe.pipeline.tables import write_tsv
from bioprobe.settings import PermutationSettings


def main(sm):
    tables = {k: sm.input[k] for k in ("downstream", "probes", "attention", "similarity")}
    # prompting methods: in the summary, not among the fine-tuned runs the correlations read
    options = {**sm.params.options, "prompting": sm.params.prompting}
    measures = summary.internal_measures(**tables, **options)
    write_tsv(measures, sm.output.measures)
    permutation = PermutationSettings.from_config(sm.params.permutation, "statistics.permutation")
    write_tsv(summary.correlations(measures, permutation=permutation), sm.output.correlations)
    table = summary.summary_table(**tables, **options)
    write_tsv(table, sm.output.summary)
    Path(sm.output.markdown).write_text(summary.to_markdown(table) + "\n", encoding="utf-8")


run_script(snakemake, main)  # noqa: F821
