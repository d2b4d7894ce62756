rule probe:
    input:
        dump=grid.DUMP_DIR,
        labels=grid.LABELS_JSON,
    output:
        grid.PROBE_TSV,
    log:
        grid.log("probe", grid.RUN),
    benchmark:
        grid.benchmark("probe", grid.RUN)
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
            grid.table("probes"),
            category="Tables",
            labels={"table": "probes", "format": "TSV"},
            caption="../report/probes_table.rst",
        ),
    log:
        grid.log("collect_probes"),
    benchmark:
        grid.benchmark("collect_probes")
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="probes",
    script:
        "../workflow_scripts/collect_table.py"
