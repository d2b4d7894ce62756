# The linear probe along its complexity (bioprobe.probing.sweep, Hewitt & Liang 2019): task and
# control scores per variant and layer at each C (full rank) and each rank (at probe.linear.C).
rule probe_sweep:
    input:
        dump=grid.DUMP_DIR,
        labels=grid.LABELS_JSON,
    output:
        grid.PROBE_SWEEP_TSV,
    log:
        grid.log("probe_sweep", grid.RUN),
    benchmark:
        grid.benchmark("probe_sweep", grid.RUN)
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        probe=sweep_probe_slice,
        sweep=sweep_slice,
    script:
        "../workflow_scripts/probe_sweep.py"


rule collect_probe_sweep:
    input:
        analysis_files(grid.PROBE_SWEEP_TSV, sweep_runs()),
    output:
        table_report("probe_sweep", "../report/probe_sweep_table.rst"),
    log:
        grid.log("collect_probe_sweep"),
    benchmark:
        grid.benchmark("collect_probe_sweep")
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="probe_sweep",
    script:
        "../workflow_scripts/collect_table.py"


rule plot_probe_sweep:
    input:
        table=grid.table("probe_sweep"),
    output:
        png=figure_report(
            grid.figure("probe_sweep"),
            "Probing",
            "../report/probe_sweep.rst",
            "task vs control score along probe complexity",
        ),
        pdf=grid.figure("probe_sweep", "pdf"),
    log:
        grid.log("plot_probe_sweep"),
    benchmark:
        grid.benchmark("plot_probe_sweep")
    conda:
        "../envs/bioprobe.yaml"
    params:
        figure="probe_sweep",
        options=probe_sweep_figure_options,
    script:
        "../workflow_scripts/plot.py"
