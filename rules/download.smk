# The only rules that reach the network: local rules (on a cluster they run on the login node,
# where the Hub is reachable), before any compute job. Compute jobs run with HF_HUB_OFFLINE=1
# (set in common.smk) and load what these put under resources/hub/.


rule download_model:
    output:
        directory("resources/hub/models/{model}"),
    log:
        "logs/download/models/{model}.log",
    benchmark:
        "benchmarks/download/models/{model}.tsv"
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        hub=hub_model_slice,
    script:
        "../workflow_scripts/download_model.py"


rule download_dataset:
    output:
        directory("resources/hub/datasets/{task}"),
    log:
        "logs/download/datasets/{task}.log",
    benchmark:
        "benchmarks/download/datasets/{task}.tsv"
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        hub=hub_dataset_slice,
    script:
        "../workflow_scripts/download_dataset.py"
