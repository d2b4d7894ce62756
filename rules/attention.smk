rule attention_similarity:
    input:
        unpack(attention_inputs),
    output:
        "results/attention/{task}/{model}/{method}/size{size}/seed{seed}.tsv",
    log:
        "logs/attention_similarity/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/attention_similarity/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    script:
        "../workflow_scripts/attention_similarity.py"


rule cka:
    input:
        dump="results/dumps/{task}/{model}/{method}/size{size}/seed{seed}",
        reference=pretrained_dump,
        labels="results/data/{task}/labels.json",
    output:
        "results/cka/{task}/{model}/{method}/size{size}/seed{seed}.tsv",
    log:
        "logs/cka/{task}/{model}/{method}/size{size}/seed{seed}.log",
    benchmark:
        "benchmarks/cka/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    params:
        cka=lambda wc: sorted_slice(
            {**config["cka"], "pair_mode": config["probe"]["pair_mode"]}
        ),
    script:
        "../workflow_scripts/cka.py"


rule collect_attention:
    input:
        analysis_files(grid.ATTENTION_TSV, variant_runs()),
    output:
        report(
            "results/tables/attention_similarity.tsv",
            category="Attention",
            caption="../report/attention_table.rst",
        ),
    log:
        "logs/collect_attention.log",
    benchmark:
        "benchmarks/collect_attention.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="attention",
    script:
        "../workflow_scripts/collect_table.py"


rule collect_cka:
    input:
        analysis_files(grid.CKA_TSV, compared_runs()),
    output:
        report(
            "results/tables/cka.tsv",
            category="Representation similarity",
            caption="../report/cka_table.rst",
        ),
    log:
        "logs/collect_cka.log",
    benchmark:
        "benchmarks/collect_cka.tsv"
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="cka",
    script:
        "../workflow_scripts/collect_table.py"
