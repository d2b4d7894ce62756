rule extract:
    input:
        unpack(task_data),
        model=dump_model_input,
        base=adapter_base_input,
    output:
        dump_output(grid.DUMP_DIR),
    log:
        grid.log("extract", grid.RUN),
    benchmark:
        grid.benchmark("extract", grid.RUN)
    priority: 1  # before the short analyses (rules/finetune.smk)
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        gpu=1,
        # the retry number: a retry after an out-of-memory error halves the batch (bioprobe.pipeline.oom)
        attempt=lambda wc, attempt: attempt,
    params:
        extract=extract_slice,
        model=model_slice,
        location=dump_model_location,
        base=adapter_base_location,
    script:
        "../workflow_scripts/extract.py"
