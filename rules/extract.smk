rule extract:
    input:
        unpack(task_data),
        model=dump_model_input,
    output:
        directory("results/dumps/{task}/{model}/{method}/size{size}/seed{seed}"),
    log:
        "logs/extract/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/extract/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
    params:
        extract=extract_slice,
        model=model_slice,
        location=dump_model_location,
    threads: 4
    resources:
        mem_mb=8000,
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/extract.py"
