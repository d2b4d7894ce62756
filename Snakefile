from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/extract.smk"
include: "rules/probe.smk"
include: "rules/attention.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
