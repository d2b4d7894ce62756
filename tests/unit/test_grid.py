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
