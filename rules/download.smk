# The only rules that reach the network: local rules (on a cluster they run on the login node,
# where the Hub is reachable), before any compute job. Compute jobs run with HF_HUB_OFFLINE=1
# (set in common.smk) and load what these put under resources/hub/.


rule download_model:
    output:
        directory(hub.MODEL_DIR),
    log:
        grid.log("download/models", "{model}"),
    benchmark:
        grid.benchmark("download/models", "{model}")
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        hub=hub_model_slice,
    script:
        "../workflow_scripts/download_model.py"


rule download_dataset:
    output:
        directory(hub.DATASET_DIR),
    log:
        grid.log("download/datasets", "{task}"),
    benchmark:
        grid.benchmark("download/datasets", "{task}")
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        hub=hub_dataset_slice,
    script:
        "../workflow_scripts/download_dataset.py"


rule download_instructions:
    output:
        directory(hub.INSTRUCTIONS_DIR),
    log:
        grid.log("download/instructions"),
    benchmark:
        grid.benchmark("download/instructions")
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    params:
        instructions=instructions_slice,
    script:
        "../workflow_scripts/download_instructions.py"
