rule plot_downstream:
    input:
        "results/tables/downstream.tsv",
    output:
        png=report(
            "results/figures/downstream.png",
            category="Downstream performance",
            caption="../report/downstream.rst",
        ),
        pdf="results/figures/downstream.pdf",
    log:
        "logs/plot_downstream.log",
    benchmark:
        "benchmarks/plot_downstream.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="downstream",
        options={},
    script:
        "../workflow_scripts/plot.py"


rule plot_probes:
    input:
        "results/tables/probes.tsv",
    output:
        png=report(
            "results/figures/probes.png",
            category="Probing",
            caption="../report/probes.rst",
        ),
        pdf="results/figures/probes.pdf",
    log:
        "logs/plot_probes.log",
    benchmark:
        "benchmarks/plot_probes.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="probes",
        options=probe_figure_options,
    script:
        "../workflow_scripts/plot.py"


rule plot_attention_heatmaps:
    input:
        "results/tables/attention_similarity.tsv",
    output:
        png=report(
            expand(
                "results/figures/attention_heatmap_{task}.png",
                task=sorted(config["tasks"]),
            ),
            category="Attention",
            caption="../report/attention_heatmap.rst",
        ),
        pdf=expand(
            "results/figures/attention_heatmap_{task}.pdf",
            task=sorted(config["tasks"]),
        ),
    log:
        "logs/plot_attention_heatmaps.log",
    benchmark:
        "benchmarks/plot_attention_heatmaps.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="attention_heatmap",
        options={"metric": "cosine"},
    script:
        "../workflow_scripts/plot.py"


rule plot_attention_by_layer:
    input:
        "results/tables/attention_similarity.tsv",
    output:
        png=report(
            "results/figures/attention_by_layer.png",
            category="Attention",
            caption="../report/attention_by_layer.rst",
        ),
        pdf="results/figures/attention_by_layer.pdf",
    log:
        "logs/plot_attention_by_layer.log",
    benchmark:
        "benchmarks/plot_attention_by_layer.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="attention_by_layer",
        options={"metric": "cosine"},
    script:
        "../workflow_scripts/plot.py"


rule plot_cka:
    input:
        "results/tables/cka.tsv",
    output:
        png=report(
            "results/figures/cka.png",
            category="Representation similarity",
            caption="../report/cka.rst",
        ),
        pdf="results/figures/cka.pdf",
    log:
        "logs/plot_cka.log",
    benchmark:
        "benchmarks/plot_cka.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="cka",
        options={},
    script:
        "../workflow_scripts/plot.py"


rule summarise:
    input:
        downstream="results/tables/downstream.tsv",
        probes="results/tables/probes.tsv",
        attention="results/tables/attention_similarity.tsv",
        cka="results/tables/cka.tsv",
    output:
        measures="results/tables/internal_measures.tsv",
        correlations=report(
            "results/tables/correlations.tsv",
            category="Downstream vs internal measures",
            caption="../report/correlations_table.rst",
        ),
        summary=report(
            "results/tables/summary.tsv",
            category="Summary",
            caption="../report/summary_table.rst",
        ),
        markdown="results/tables/summary.md",
    log:
        "logs/summarise.log",
    benchmark:
        "benchmarks/summarise.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        options=summary_options,
    script:
        "../workflow_scripts/summarise.py"


rule plot_correlations:
    input:
        "results/tables/internal_measures.tsv",
    output:
        png=report(
            "results/figures/correlations.png",
            category="Downstream vs internal measures",
            caption="../report/correlations.rst",
        ),
        pdf="results/figures/correlations.pdf",
    log:
        "logs/plot_correlations.log",
    benchmark:
        "benchmarks/plot_correlations.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="correlations",
        options={},
    script:
        "../workflow_scripts/plot.py"
