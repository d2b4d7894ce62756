rule probe:
    input:
        dump="results/dumps/{task}/{model}/{method}/size{size}/seed{seed}",
        labels="results/data/{task}/labels.json",
    output:
        "results/probes/{task}/{model}/{method}/size{size}/seed{seed}.tsv",
    log:
        "logs/probe/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/probe/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        probe=probe_slice,
    script:
        "../workflow_scripts/probe.py"


rule collect_probes:
    input:
        analysis_files(grid.PROBE_TSV, variant_runs()),
    output:
        report(
            "results/tables/probes.tsv",
            category="Probing",
            caption="../report/probes_table.rst",
        ),
    log:
        "logs/collect_probes.log",
    benchmark:
        "benchmarks/collect_probes.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="probes",
    script:
        "../workflow_scripts/collect_table.py"
