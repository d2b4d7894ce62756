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


rule representation_similarity:
    input:
        dump=grid.DUMP_DIR,
        reference=pretrained_dump,
    output:
        grid.REPRESENTATION_SIMILARITY_TSV,
    log:
        grid.log("representation_similarity", grid.RUN),
    benchmark:
        grid.benchmark("representation_similarity", grid.RUN)
    conda:
        "../envs/bioprobe.yaml"
    threads: 1
    params:
        cka=lambda wc: sorted_slice(
            {**config["cka"], "pair_mode": config["probe"]["pair_mode"]}
        ),
    script:
        "../workflow_scripts/representation_similarity.py"


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


rule collect_representation_similarity:
    input:
        analysis_files(grid.REPRESENTATION_SIMILARITY_TSV, compared_runs()),
    output:
        report(
            grid.table("representation_similarity"),
            category="Tables",
            labels={"table": "representation_similarity", "format": "TSV"},
            caption="../report/representation_similarity_table.rst",
        ),
    log:
        grid.log("collect_representation_similarity"),
    benchmark:
        grid.benchmark("collect_representation_similarity")
    conda:
        "../envs/bioprobe.yaml"
    params:
        table="representation_similarity",
    script:
        "../workflow_scripts/collect_table.py"
