# Causal erasure (bioprobe.analysis.erasure): per fine-tuned run, each layer's probed property
# removed with LEACE and the test split scored on top; a random subspace of its rank as control.
rule erasure:
    input:
        unpack(task_data),
        model=grid.MODEL_DIR,
        base=adapter_base_input,
    output:
        grid.ERASURE_TSV,
    log:
        grid.log("erasure", grid.RUN),
    benchmark:
        grid.benchmark("erasure", grid.RUN)
    wildcard_constraints:
        size=r"100|[1-9]\d?",  # fine-tuned runs only: a pretrained head is untrained
    priority: 2  # after fine-tuning, the next longest (rules/finetune.smk)
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        erasure=lambda wc: sorted_slice(config["erasure"]),
        training=training_slice,
        model=model_slice,
        location=dump_model_location,
        base=adapter_base_location,
    script:
        "../workflow_scripts/erasure.py"


rule collect_erasure:
    input:
        analysis_files(grid.ERASURE_TSV, erasure_runs()),
    output:
        report(
            grid.table("erasure"),
            category="Tables",
            labels={"table": "erasure", "format": "TSV"},
            caption="../report/erasure_table.rst",
        ),
    log:
        grid.log("collect_erasure"),
    benchmark:
        grid.benchmark("collect_erasure")
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="erasure",
    script:
        "../workflow_scripts/collect_table.py"


rule plot_erasure:
    input:
        table=grid.table("erasure"),
    output:
        png=figure_report(
            grid.figure("erasure"),
            "Causal erasure",
            "../report/erasure.rst",
            "score drop when a layer is erased",
        ),
        pdf=grid.figure("erasure", "pdf"),
    log:
        grid.log("plot_erasure"),
    benchmark:
        grid.benchmark("plot_erasure")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="erasure",
        options=lambda wc: {"metrics": main_metrics()},
    script:
        "../workflow_scripts/plot.py"
