rule build_scratch_model:
    input:
        train="results/data/{task}/train.jsonl",
    output:
        directory("results/pretrained/{task}/{model}"),
    log:
        "logs/build_scratch_model/{task}/{model}.log",
    benchmark:
        "benchmarks/build_scratch_model/{task}/{model}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        model=model_slice,
    script:
        "../workflow_scripts/build_scratch_model.py"


rule finetune:
    input:
        unpack(task_data),
        subset="results/data/{task}/subsets/seed{seed}.json",
        pretrained=pretrained_input,
    output:
        model=directory("results/models/{task}/{model}/{method}/size{size}/seed{seed}"),
        # scored in the same job, on the trained model still in memory
        evaluation="results/eval/{task}/{model}/{method}/size{size}/seed{seed}.json",
    log:
        "logs/finetune/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
    wildcard_constraints:
        size=r"100|[1-9]\d?",  # size 0 is the pretrained model: nothing to train
    conda:
        "../envs/bioprobe.yaml"
    threads: finetune_threads
    resources:
        mem_mb=8000,
        gpu=1,
        # the retry number: a retry after an out-of-memory error splits batches (bioprobe.oom)
        attempt=lambda wc, attempt: attempt,
    params:
        training=training_slice,
        model=model_slice,
        method=method_slice,
        location=lambda wc: pretrained_location(wc.task, wc.model),
        checkpoints="results/checkpoints/{task}/{model}/{method}/size{size}/seed{seed}",
    script:
        "../workflow_scripts/finetune.py"


# The published model (size 0, a seeded untrained head). Fine-tuned runs are scored by their
# finetune job.
rule evaluate:
    input:
        unpack(task_data),
        model=pretrained_input,
    output:
        "results/eval/{task}/{model}/{method}/size{size}/seed{seed}.json",
    log:
        "logs/evaluate/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
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


rule collect_downstream:
    input:
        eval_files(),
    output:
        report(
            "results/tables/downstream.tsv",
            category="Downstream performance",
            caption="../report/downstream_table.rst",
        ),
    log:
        "logs/collect_downstream.log",
    benchmark:
        "benchmarks/collect_downstream.tsv"
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/collect_downstream.py"
