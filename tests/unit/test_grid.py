from bioprobe.config import validate_config
from bioprobe.pipeline import grid


def cfg(sizes, seeds=(1,)):
    return validate_config(
        {
            "tasks": {
                t: {
                    "type": "ner",
                    "format": "bio-tsv",
                    "path": "d",
                    "splits": {"train": "a", "validation": "b", "test": "c"},
                }
                for t in ("t1", "t2")
            },
            "models": {"m1": {"source": "x"}, "m2": {"source": "y"}},
            "sizes": list(sizes),
            "seeds": list(seeds),
        }
    )


def test_size_zero_is_pretrained_and_never_fine_tuned():
    c = cfg([0, 10, 100], seeds=[1, 2])
    runs = grid.eval_runs(c)
    assert len(runs) == 2 * 2 * 2 * 3
    assert all(r.method == grid.PRETRAINED for r in runs if r.size == 0)
    assert all(r.size > 0 for r in grid.finetune_runs(c))
    assert len(list(grid.finetune_runs(c))) == 2 * 2 * 2 * 2


def test_without_size_zero_no_pretrained_runs():
    assert not list(grid.pretrained_runs(cfg([10, 50])))


def test_paths():
    run = grid.Run("t1", "m1", "full", 10, 3)
    assert grid.path(grid.EVAL_JSON, run) == "results/eval/t1/m1/full/size10/seed3.json"


# --- instruction tuning: runs once per model (per task for scratch models), evaluated by
# every prompting method, analysed on every task ---


def instruction_cfg(models=None):
    c = {
        "tasks": cfg([0]).get("tasks"),
        "models": models or {"m1": {"source": "x"}},
        "methods": {
            "full": {},
            "instruct": {"kind": "instruction"},
            "zero-shot": {"kind": "prompting"},
            "few-shot-2": {"kind": "prompting", "shots": 2},
        },
        "sizes": [0, 50, 100],
        "seeds": [1, 2],
    }
    return validate_config(c)


def test_instruction_methods_are_neither_task_training_nor_prompting():
    c = instruction_cfg()
    assert grid.training_methods(c) == ["full"]
    assert grid.prompting_methods(c) == ["zero-shot", "few-shot-2"]
    assert grid.instruction_methods(c) == ["instruct"]
    assert grid.prompted_methods(c) == [
        "few-shot-2", "instruct+few-shot-2", "instruct+zero-shot", "zero-shot",
    ]  # fmt: skip
    assert {r.method for r in grid.finetune_runs(c)} == {"full"}


def test_a_published_model_is_instruction_tuned_once_for_every_task():
    c = instruction_cfg()
    runs = grid.instruction_runs(c)
    assert runs == [
        grid.InstructionRun("m1", grid.PUBLISHED, "instruct", size, seed)
        for size in (50, 100) for seed in (1, 2)
    ]  # fmt: skip
    assert grid.path(grid.INSTRUCT_MODEL_DIR, runs[0]) == (
        "results/instruct/m1/published/instruct/size50/seed1"
    )
    variants = list(grid.instruction_variants(c))
    assert len(variants) == 2 * 2 * 2  # tasks x sizes x seeds
    assert {grid.instruction_run(c, v) for v in variants} == set(runs)


def test_a_scratch_model_is_instruction_tuned_per_task():
    """A scratch model's weights are built on each task's corpus: one tuning per task."""
    c = instruction_cfg({"s": {"source": "scratch", "scratch": {"family": "gpt2"}}})
    origins = {r.origin for r in grid.instruction_runs(c)}
    assert origins == {"t1", "t2"}
    assert len(grid.instruction_runs(c)) == 2 * 2 * 2


def test_every_prompting_method_evaluates_the_instruction_tuned_models():
    c = instruction_cfg()
    evaluated = [r for r in grid.eval_runs(c) if grid.split_instructed(r.method)]
    assert len(evaluated) == 2 * 2 * 2 * 2  # tasks x sizes x seeds x prompting methods
    assert {grid.split_instructed(r.method) for r in evaluated} == {
        ("instruct", "zero-shot"), ("instruct", "few-shot-2"),
    }  # fmt: skip
    assert grid.split_instructed("zero-shot") is None
    run = grid.Run("t1", "m1", "instruct+zero-shot", 50, 1)
    assert grid.instruction_run(c, run) == grid.InstructionRun(
        "m1", grid.PUBLISHED, "instruct", 50, 1
    )
