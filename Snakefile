from snakemake.utils import min_version

min_version("9.0")


# The report's landing page: what was run (from the config) and how to read the report.
report: "report/workflow.rst"


# First the config: config.yaml, or the --configfile given instead of it; then its validation.
include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/instructions.smk"
include: "rules/extract.smk"
include: "rules/probe.smk"
include: "rules/probe_sweep.smk"
include: "rules/attention.smk"
include: "rules/erasure.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
