rule build_scratch_model:
    input:
        train=grid.split_jsonl("train"),
    output:
        directory(grid.PRETRAINED_DIR),
    log:
        grid.log("build_scratch_model", "{task}/{model}"),
    benchmark:
        grid.benchmark("build_scratch_model", "{task}/{model}")
    conda:
        "../envs/bioprobe.yaml"
    params:
        model=model_slice,
    script:
        "../workflow_scripts/build_scratch_model.py"


rule finetune:
    input:
        unpack(task_data),
        subset=grid.SUBSET_JSON,
        pretrained=pretrained_input,
    output:
        model=directory(grid.MODEL_DIR),
        # scored in the same job, on the trained model still in memory
        evaluation=grid.EVAL_JSON,
        predictions=grid.PREDICTIONS_JSON,
    log:
        grid.log("finetune", grid.RUN),
    benchmark:
        grid.benchmark("finetune", grid.RUN)
    wildcard_constraints:
        size=r"100|[1-9]\d?",  # size 0 is the pretrained model: nothing to train
    # the longest jobs first, then the analyses fill the cores around them: started as soon as
    # they can be, the last fine-tuning is not left alone at the end with its analyses behind it
    priority: 3
    conda:
        "../envs/bioprobe.yaml"
    threads: finetune_threads
    resources:
        mem_mb=8000,
        # one GPU per process (training.processes; launched with torchrun)
        gpu=finetune_processes,
        # the retry number: a retry after an out-of-memory error splits batches (bioprobe.pipeline.oom)
        attempt=lambda wc, attempt: attempt,
    params:
        training=training_slice,
        model=model_slice,
        method=method_slice,
        location=lambda wc: pretrained_location(wc.task, wc.model),
        checkpoints=grid.CHECKPOINT_DIR,
    script:
        "../workflow_scripts/finetune.py"


# The published model (size 0, a seeded untrained head). Fine-tuned runs are scored by their
# finetune job.
rule evaluate:
    input:
        unpack(task_data),
        model=pretrained_input,
    output:
        evaluation=grid.EVAL_JSON,
        predictions=grid.PREDICTIONS_JSON,
    log:
        grid.log("evaluate", grid.RUN),
    benchmark:
        grid.benchmark("evaluate", grid.RUN)
    wildcard_constraints:
        method=grid.PRETRAINED,
        size="0",
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    params:
        training=training_slice,
        model=model_slice,
        location=lambda wc: pretrained_location(wc.task, wc.model),
    script:
        "../workflow_scripts/evaluate.py"


# A prompting method (zero- or few-shot): the pretrained model asked each example, nothing
# trained; the seed draws the demonstrations.
rule prompt:
    input:
        unpack(task_data),
        model=pretrained_input,
    output:
        evaluation=grid.EVAL_JSON,
        predictions=grid.PREDICTIONS_JSON,
    log:
        grid.log("prompt", grid.RUN),
    benchmark:
        grid.benchmark("prompt", grid.RUN)
    wildcard_constraints:
        method=PROMPTING_PATTERN,
        size="0",
    conda:
        "../envs/bioprobe.yaml"
    threads: finetune_threads
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        method=prompting_slice,
        method_id=prompting_method_id,
        prompt=task_prompt_slice,
        model=model_slice,
        location=lambda wc: pretrained_location(wc.task, wc.model),
    script:
        "../workflow_scripts/prompt.py"


rule collect_downstream:
    input:
        evaluations=eval_files(),
        predictions=eval_files(grid.PREDICTIONS_JSON),
    output:
        report(
            grid.table("downstream"),
            category="Tables",
            labels={"table": "downstream", "format": "TSV"},
            caption="../report/downstream_table.rst",
        ),
    log:
        grid.log("collect_downstream"),
    benchmark:
        grid.benchmark("collect_downstream")
    conda:
        "../envs/bioprobe.yaml"
    params:
        bootstrap=lambda wc: sorted_slice(config["statistics"]["bootstrap"]),
    script:
        "../workflow_scripts/collect_downstream.py"
