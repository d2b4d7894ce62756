# Figures, tables and the report. Every result the report shows carries one label (the
# report lists them as a table, each row with its view and caption buttons): figures in their
# analysis' category, tables in "Tables" as a pair of the TSV and its HTML rendering (the
# report's format toggle switches between them).


rule chance_levels:
    input:
        dumps=chance_dumps(),
        labels=expand(grid.LABELS_JSON, task=sorted(config["tasks"])),
    output:
        table_report("chance", "../report/chance_table.rst"),
    log:
        grid.log("chance_levels"),
    benchmark:
        grid.benchmark("chance_levels")
    conda:
        "../envs/bioprobe.yaml"
    params:
        tasks=sorted(config["tasks"]),
        splits=chance_splits(),
    script:
        "../workflow_scripts/chance_levels.py"


rule render_table:
    input:
        table=grid.table("{name}"),
        caption=table_caption,
    output:
        report(
            grid.table("{name}", "html"),
            category="Tables",
            caption="../report/table_html.rst",
            labels={"table": "{name}", "format": "HTML"},
        ),
    log:
        grid.log("render_table", "{name}"),
    benchmark:
        grid.benchmark("render_table", "{name}")
    wildcard_constraints:
        name="|".join(report_tables()),
    conda:
        "../envs/bioprobe.yaml"
    params:
        title=lambda wc: grid.table(wc.name),
    script:
        "../workflow_scripts/render_table.py"


rule plot_attention_examples:
    input:
        unpack(example_dumps),
    output:
        png=figure_report(
            grid.figure("attention_examples/{task}/{model}"),
            "Attention",
            "../report/attention_examples.rst",
            "attention examples · {task} · {model}",
        ),
        pdf=grid.figure("attention_examples/{task}/{model}", "pdf"),
        html=figure_report(
            grid.figure("attention_view/{task}/{model}", "html"),
            "Attention",
            "../report/attention_view.rst",
            "head view (interactive) · {task} · {model}",
        ),
    log:
        grid.log("plot_attention_examples", "{task}/{model}"),
    benchmark:
        grid.benchmark("plot_attention_examples", "{task}/{model}")
    conda:
        "../envs/bioprobe.yaml"
    params:
        variant=example_variant,
        examples=3,
        max_tokens=32,
    script:
        "../workflow_scripts/attention_examples.py"


rule plot_downstream:
    input:
        table=grid.table("downstream"),
        chance=grid.table("chance"),
    output:
        png=figure_report(
            grid.figure("downstream"),
            "Downstream performance",
            "../report/downstream.rst",
            "downstream score vs training data",
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
        options=downstream_figure_options,
    script:
        "../workflow_scripts/plot.py"


rule plot_probes:
    input:
        table=grid.table("probes"),
        chance=grid.table("chance"),
    output:
        png=figure_report(
            grid.figure("probes"),
            "Probing",
            "../report/probes.rst",
            "probe score per layer",
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


rule plot_probes_mdl:
    input:
        table=grid.table("probes"),
    output:
        png=figure_report(
            grid.figure("probes_mdl"),
            "Probing",
            "../report/probes_mdl.rst",
            "MDL compression per layer",
        ),
        pdf=grid.figure("probes_mdl", "pdf"),
    log:
        grid.log("plot_probes_mdl"),
    benchmark:
        grid.benchmark("plot_probes_mdl")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="probes_mdl",
        options={"split": config["probe"]["fit_split"]},
    script:
        "../workflow_scripts/plot.py"


rule plot_attention_heatmaps:
    input:
        table=grid.table("attention_similarity"),
    output:
        # one report entry per task, each with its label
        png=[
            figure_report(
                grid.figure(f"attention_heatmap_{task}"),
                "Attention",
                "../report/attention_heatmap.rst",
                f"attention heatmap · {task}",
            )
            for task in sorted(config["tasks"])
        ],
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
        table=grid.table("attention_similarity"),
    output:
        png=figure_report(
            grid.figure("attention_by_layer"),
            "Attention",
            "../report/attention_by_layer.rst",
            "attention similarity by layer",
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


rule plot_representation_similarity:
    input:
        table=grid.table("representation_similarity"),
    output:
        png=figure_report(
            grid.figure("{metric}"),
            "Representation similarity",
            "../report/representation_similarity.rst",
            "{metric} to pretrained by layer",
        ),
        pdf=grid.figure("{metric}", "pdf"),
    log:
        grid.log("plot_representation_similarity", "{metric}"),
    benchmark:
        grid.benchmark("plot_representation_similarity", "{metric}")
    wildcard_constraints:
        metric="|".join(config["cka"]["metrics"]),
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="representation_similarity",
        options=lambda wc: {"metric": wc.metric},
    script:
        "../workflow_scripts/plot.py"


rule summarise:
    input:
        downstream=grid.table("downstream"),
        probes=grid.table("probes"),
        attention=grid.table("attention_similarity"),
        similarity=grid.table("representation_similarity"),
    output:
        measures=table_report(
            "internal_measures", "../report/internal_measures_table.rst"
        ),
        correlations=table_report("correlations", "../report/correlations_table.rst"),
        summary=table_report("summary", "../report/summary_table.rst"),
        markdown=grid.table("summary", "md"),
    log:
        grid.log("summarise"),
    benchmark:
        grid.benchmark("summarise")
    conda:
        "../envs/bioprobe.yaml"
    params:
        options=summary_options,
        prompting=grid.prompted_methods(config),
        permutation=lambda wc: sorted_slice(config["statistics"]["permutation"]),
    script:
        "../workflow_scripts/summarise.py"


rule plot_correlations:
    input:
        table=grid.table("internal_measures"),
        # the panels state the table's numbers (Holm's adjustment is over a task's row)
        correlations=grid.table("correlations"),
    output:
        png=figure_report(
            grid.figure("correlations"),
            "Downstream vs internal measures",
            "../report/correlations.rst",
            "downstream score vs internal measures",
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


rule collect_blurb:
    input:
        grid.table("downstream"),
    output:
        table_report("blurb", "../report/blurb_table.rst"),
    log:
        grid.log("collect_blurb"),
    benchmark:
        grid.benchmark("collect_blurb")
    conda:
        "../envs/bioprobe.yaml"
    params:
        tasks=blurb_slice,
    script:
        "../workflow_scripts/collect_blurb.py"


rule plot_blurb:
    input:
        table=grid.table("blurb"),
    output:
        png=figure_report(
            grid.figure("blurb"),
            "BLURB",
            "../report/blurb.rst",
            "BLURB score vs training data",
        ),
        pdf=grid.figure("blurb", "pdf"),
    log:
        grid.log("plot_blurb"),
    benchmark:
        grid.benchmark("plot_blurb")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="blurb",
        # prompting methods: levels, not lines over sizes
        options={"prompting": grid.prompted_methods(config)},
    script:
        "../workflow_scripts/plot.py"


rule plot_instruction_tuning:
    input:
        probes=grid.table("probes"),
        attention=grid.table("attention_similarity"),
        representation=grid.table("representation_similarity"),
    output:
        png=figure_report(
            grid.figure("instruction_tuning"),
            "Instruction tuning",
            "../report/instruction_tuning.rst",
            "instruction tuning vs task fine-tuning by layer",
        ),
        pdf=grid.figure("instruction_tuning", "pdf"),
    log:
        grid.log("plot_instruction_tuning"),
    benchmark:
        grid.benchmark("plot_instruction_tuning")
    conda:
        "../envs/bioprobe.yaml"
    params:
        options=instruction_figure_options,
    script:
        "../workflow_scripts/plot_instruction_tuning.py"
