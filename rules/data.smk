rule demo_ner_data:
    output:
        train="resources/demo/ner/train.tsv",
        validation="resources/demo/ner/devel.tsv",
        test="resources/demo/ner/test.tsv",
    log:
        "logs/demo_data/ner.log",
    benchmark:
        "benchmarks/demo_data/ner.tsv"
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        kind="ner",
    script:
        "../workflow_scripts/demo_data.py"


rule demo_nli_data:
    output:
        train="resources/demo/nli/train.jsonl",
        validation="resources/demo/nli/dev.jsonl",
        test="resources/demo/nli/test.jsonl",
    log:
        "logs/demo_data/nli.log",
    benchmark:
        "benchmarks/demo_data/nli.tsv"
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        kind="nli",
    script:
        "../workflow_scripts/demo_data.py"


rule prepare_task:
    input:
        unpack(task_source_files),
    output:
        labels="results/data/{task}/labels.json",
        train="results/data/{task}/train.jsonl",
        validation="results/data/{task}/validation.jsonl",
        test="results/data/{task}/test.jsonl",
    log:
        "logs/prepare_task/{task}.log",
    benchmark:
        "benchmarks/prepare_task/{task}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        task=task_slice,
    script:
        "../workflow_scripts/prepare_task.py"


rule subsample:
    input:
        train="results/data/{task}/train.jsonl",
        labels="results/data/{task}/labels.json",
    output:
        "results/data/{task}/subsets/seed{seed}.json",
    log:
        "logs/subsample/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/subsample/{task}/seed{seed}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/subsample.py"
