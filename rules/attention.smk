rule attention_similarity:
    input:
        unpack(attention_inputs),
    output:
        grid.ATTENTION_TSV,
    log:
        grid.log("attention_similarity", grid.RUN),
    benchmark:
        grid.benchmark("attention_similarity", grid.RUN)
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    script:
        "../workflow_scripts/attention_similarity.py"


rule cka:
    input:
        dump=grid.DUMP_DIR,
        reference=pretrained_dump,
    output:
        grid.CKA_TSV,
    log:
        grid.log("cka", grid.RUN),
    benchmark:
        grid.benchmark("cka", grid.RUN)
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
            grid.table("attention_similarity"),
            category="Tables",
            labels={"table": "attention_similarity", "format": "TSV"},
            caption="../report/attention_table.rst",
        ),
    log:
        grid.log("collect_attention"),
    benchmark:
        grid.benchmark("collect_attention")
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
            grid.table("cka"),
            category="Tables",
            labels={"table": "cka", "format": "TSV"},
            caption="../report/cka_table.rst",
        ),
    log:
        grid.log("collect_cka"),
    benchmark:
        grid.benchmark("collect_cka")
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="cka",
    script:
        "../workflow_scripts/collect_table.py"
