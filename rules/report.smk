rule plot_downstream:
    input:
        grid.table("downstream"),
    output:
        png=report(
            grid.figure("downstream"),
            category="Downstream performance",
            caption="../report/downstream.rst",
        ),
        pdf=grid.figure("downstream", "pdf"),
    log:
        grid.log("plot_downstream"),
    benchmark:
        grid.benchmark("plot_downstream")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="downstream",
        options={},
    script:
        "../workflow_scripts/plot.py"


rule plot_probes:
    input:
        grid.table("probes"),
    output:
        png=report(
            grid.figure("probes"),
            category="Probing",
            caption="../report/probes.rst",
        ),
        pdf=grid.figure("probes", "pdf"),
    log:
        grid.log("plot_probes"),
    benchmark:
        grid.benchmark("plot_probes")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="probes",
        options=probe_figure_options,
    script:
        "../workflow_scripts/plot.py"


rule plot_attention_heatmaps:
    input:
        grid.table("attention_similarity"),
    output:
        png=report(
            expand(
                grid.figure("attention_heatmap_{task}"),
                task=sorted(config["tasks"]),
            ),
            category="Attention",
            caption="../report/attention_heatmap.rst",
        ),
        pdf=expand(
            grid.figure("attention_heatmap_{task}", "pdf"),
            task=sorted(config["tasks"]),
        ),
    log:
        grid.log("plot_attention_heatmaps"),
    benchmark:
        grid.benchmark("plot_attention_heatmaps")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="attention_heatmap",
        options={"metric": "cosine"},
    script:
        "../workflow_scripts/plot.py"


rule plot_attention_by_layer:
    input:
        grid.table("attention_similarity"),
    output:
        png=report(
            grid.figure("attention_by_layer"),
            category="Attention",
            caption="../report/attention_by_layer.rst",
        ),
        pdf=grid.figure("attention_by_layer", "pdf"),
    log:
        grid.log("plot_attention_by_layer"),
    benchmark:
        grid.benchmark("plot_attention_by_layer")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="attention_by_layer",
        options={"metric": "cosine"},
    script:
        "../workflow_scripts/plot.py"


rule plot_cka:
    input:
        grid.table("cka"),
    output:
        png=report(
            grid.figure("cka"),
            category="Representation similarity",
            caption="../report/cka.rst",
        ),
        pdf=grid.figure("cka", "pdf"),
    log:
        grid.log("plot_cka"),
    benchmark:
        grid.benchmark("plot_cka")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="cka",
        options={},
    script:
        "../workflow_scripts/plot.py"


rule summarise:
    input:
        downstream=grid.table("downstream"),
        probes=grid.table("probes"),
        attention=grid.table("attention_similarity"),
        cka=grid.table("cka"),
    output:
        measures=grid.table("internal_measures"),
        correlations=report(
            grid.table("correlations"),
            category="Downstream vs internal measures",
            caption="../report/correlations_table.rst",
        ),
        summary=report(
            grid.table("summary"),
            category="Summary",
            caption="../report/summary_table.rst",
        ),
        markdown=grid.table("summary", "md"),
    log:
        grid.log("summarise"),
    benchmark:
        grid.benchmark("summarise")
    conda:
        "../envs/bioprobe.yaml"
    params:
        options=summary_options,
    script:
        "../workflow_scripts/summarise.py"


rule plot_correlations:
    input:
        grid.table("internal_measures"),
    output:
        png=report(
            grid.figure("correlations"),
            category="Downstream vs internal measures",
            caption="../report/correlations.rst",
        ),
        pdf=grid.figure("correlations", "pdf"),
    log:
        grid.log("plot_correlations"),
    benchmark:
        grid.benchmark("plot_correlations")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="correlations",
        options={},
    script:
        "../workflow_scripts/plot.py"
