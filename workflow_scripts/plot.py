"""Draw one figure (PNG for the report, PDF for papers) from a collected tidy table."""

from pathlib import Path

import pandas as pd

from bioprobe.pipeline.smk_support import run_script
from bioprobe.plotting import figures

PLOTTERS = {
    "downstream": figures.plot_downstream,
    "probes": figures.plot_probes,
    "probes_mdl": figures.plot_probes_mdl,
    "probe_sweep": figures.plot_probe_sweep,
    "attention_heatmap": figures.plot_attention_heatmaps,
    "attention_by_layer": figures.plot_attention_by_layer,
    "representation_similarity": figures.plot_representation_similarity,  # per metric
    "correlations": figures.plot_correlations,
    "blurb": figures.plot_blurb,
    "erasure": figures.plot_erasure,
}


def main(sm):
    stem = Path(sm.output.png[0] if isinstance(sm.output.png, list) else sm.output.png)
    if sm.params.figure == "attention_heatmap":  # one file per task: <stem>_<task>.png
        stem = stem.with_name("attention_heatmap")
    else:
        stem = stem.with_suffix("")
    df = pd.read_csv(sm.input.table, sep="\t")
    # the chance levels and the correlations, for the figures that draw them
    extra = {k: sm.input[k] for k in ("chance", "correlations") if sm.input.get(k)}
    PLOTTERS[sm.params.figure](df, stem, **sm.params.options, **extra)


run_script(snakemake, main)  # noqa: F821
