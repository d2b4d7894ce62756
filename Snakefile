from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/extract.smk"
include: "rules/probe.smk"
include: "rules/attention.smk"


rule all:
    input:
        all_targets(),
    default_target: True
