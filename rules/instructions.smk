# Instruction tuning (methods of kind instruction; bioprobe.instructions): the instruction set
# prepared and subsampled like a task's training split, one tuning per model, instruction
# method, size and seed, and the tuned model's evaluation by each prompting method. Its
# analyses (dumps, probes, attention, CKA) are those of every variant (rules/extract.smk, ...).


# The demo's instruction set (offline, deterministic), written where instructions.source: demo.
rule demo_instructions:
    output:
        directory(grid.DEMO_INSTRUCTIONS_DIR),
    log:
        grid.log("demo_instructions"),
    benchmark:
        grid.benchmark("demo_instructions")
    localrule: True
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/demo_instructions.py"


rule prepare_instructions:
    input:
        instructions_input,
    output:
        grid.INSTRUCTIONS_JSONL,
    log:
        grid.log("prepare_instructions"),
    benchmark:
        grid.benchmark("prepare_instructions")
    priority: 3  # as prepare_task's
    conda:
        "../envs/bioprobe.yaml"
    params:
        instructions=instructions_slice,
    script:
        "../workflow_scripts/prepare_instructions.py"


rule subsample_instructions:
    input:
        grid.INSTRUCTIONS_JSONL,
    output:
        grid.INSTRUCTION_SUBSET_JSON,
    log:
        grid.log("subsample_instructions", "seed{seed}"),
    benchmark:
        grid.benchmark("subsample_instructions", "seed{seed}")
    priority: 3
    conda:
        "../envs/bioprobe.yaml"
    script:
        "../workflow_scripts/subsample_instructions.py"


rule instruction_tune:
    input:
        records=grid.INSTRUCTIONS_JSONL,
        subset=grid.INSTRUCTION_SUBSET_JSON,
        pretrained=instruction_pretrained_input,
    output:
        model=directory(grid.INSTRUCT_MODEL_DIR),
    log:
        grid.log("instruction_tune", grid.INSTRUCT_RUN),
    benchmark:
        grid.benchmark("instruction_tune", grid.INSTRUCT_RUN)
    wildcard_constraints:
        method=INSTRUCTION_PATTERN,
        size=r"100|[1-9]\d?",
        origin=grid.ID_PATTERN,
    priority: 3  # as finetune's: the long jobs first
    conda:
        "../envs/bioprobe.yaml"
    threads: training_threads
    resources:
        mem_mb=8000,
        gpu=1,
        # the retry number: a retry after an out-of-memory error splits batches (bioprobe.pipeline.oom)
        attempt=lambda wc, attempt: attempt,
    params:
        training=instruction_training_slice,
        model=model_slice,
        method=method_slice,
        location=instruction_pretrained_location,
        checkpoints=grid.INSTRUCT_CHECKPOINT_DIR,
    script:
        "../workflow_scripts/instruction_tune.py"


# The instruction-tuned model asked each example by a prompting method (method
# <instruction>+<prompting>, size: the instruction set's): it has no task head to score with.
rule prompt_instructed:
    input:
        unpack(task_data),
        model=instructed_model_dir,
    output:
        evaluation=grid.EVAL_JSON,
        predictions=grid.PREDICTIONS_JSON,
    log:
        grid.log("prompt", grid.RUN),
    benchmark:
        grid.benchmark("prompt", grid.RUN)
    wildcard_constraints:
        method=INSTRUCTED_PATTERN,
        size=r"100|[1-9]\d?",
    conda:
        "../envs/bioprobe.yaml"
    threads: finetune_threads
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        method=prompting_slice,
        method_id=prompting_method_id,
        prompt=task_prompt_slice,
        model=model_slice,
        location=instructed_model_dir,
    script:
        "../workflow_scripts/prompt.py"
