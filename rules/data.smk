# The synthetic demo corpora (bioprobe.data.demo), written only where a task's path points at
# resources/demo/ (the test configs). The default demo (config.yaml) reads the real sample
# shipped in data/demo/ instead, which no rule writes.


rule demo_ner_data:
    output:
        train="resources/demo/ner/train.tsv",
        validation="resources/demo/ner/devel.tsv",
        test="resources/demo/ner/test.tsv",
    log:
        grid.log("demo_data", demo.NER_CORPUS),
    benchmark:
        grid.benchmark("demo_data", demo.NER_CORPUS)
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        kind=demo.NER_CORPUS,
    script:
        "../workflow_scripts/demo_data.py"


rule demo_nli_data:
    output:
        train="resources/demo/nli/train.jsonl",
        validation="resources/demo/nli/dev.jsonl",
        test="resources/demo/nli/test.jsonl",
    log:
        grid.log("demo_data", demo.NLI_CORPUS),
    benchmark:
        grid.benchmark("demo_data", demo.NLI_CORPUS)
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        kind=demo.NLI_CORPUS,
    script:
        "../workflow_scripts/demo_data.py"


rule prepare_task:
    input:
        unpack(task_source_files),
    output:
        labels=grid.LABELS_JSON,
        train=grid.split_jsonl("train"),
        validation=grid.split_jsonl("validation"),
        test=grid.split_jsonl("test"),
    log:
        grid.log("prepare_task", "{task}"),
    benchmark:
        grid.benchmark("prepare_task", "{task}")
    priority: 3  # as subsample's
    conda:
        "../envs/bioprobe.yaml"
    params:
        task=task_slice,
    script:
        "../workflow_scripts/prepare_task.py"


rule subsample:
    input:
        train=grid.split_jsonl("train"),
        labels=grid.LABELS_JSON,
    output:
        grid.SUBSET_JSON,
    log:
        grid.log("subsample", "{task}/seed{seed}"),
    benchmark:
        grid.benchmark("subsample", "{task}/seed{seed}")
    # fine-tuning's priority (rules/finetune.smk): a rule's priority does not pass to the jobs
    # it waits for, and a subsample queued behind the analyses held its fine-tunings back
    priority: 3
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/subsample.py"
