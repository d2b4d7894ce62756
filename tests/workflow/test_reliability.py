"""Reliability end to end: killed jobs, resuming, determinism, temporary dumps, early errors.

`interrupted_run` runs part of the tiny grid of `tiny_run` again (its scratch encoder on both
tasks, up to the collected tables: half the jobs, for CI time), with `keep_dumps: false`, through
three kills: a fine-tuning job SIGKILLed half-way (Snakemake survives), then the whole Snakemake
process group SIGKILLed (a crashed node) while a dump is half-written, then again just before a
probe table is renamed into place. The kills happen at a known point through a `sitecustomize`
hook in the jobs' Python (put on PYTHONPATH by the test only), so the test does not race the
jobs. Its results must equal the uninterrupted `tiny_run`'s byte for byte.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from .conftest import TINY_CONFIG, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

MODEL = "tiny-bert"
KILLED_FINETUNE = f"demo-ner/{MODEL}/full/size50/seed1"
TABLES = ["downstream", "probes", "attention_similarity", "representation_similarity"]
TARGETS = [f"results/tables/{name}.tsv" for name in TABLES]  # no figures: they add only time
KILL_AT_STEP = 6  # training_config: 13 steps, a checkpoint every 4: the last one is step 4

SITECUSTOMIZE = '''
"""Test-only: SIGKILL a job at a known point (BIOPROBE_TEST_KILL names which)."""
import contextlib, importlib.abc, importlib.util, os, signal, sys

MODE = os.environ.get("BIOPROBE_TEST_KILL")


def after_import(name, patch):
    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(fullname)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


def crash_everything():
    os.killpg(os.getpgrp(), signal.SIGKILL)  # the job and Snakemake: a node going down


def finetune(module):  # this job only, in the middle of the step after KILL_AT_STEP
    cls = module.ResumableTrainer
    step = cls.training_step

    def training_step(self, *args, **kwargs):
        target = os.environ["BIOPROBE_TEST_KILL_TARGET"]
        if target in str(self.args.output_dir) and self.state.global_step >= int(
            os.environ["BIOPROBE_TEST_KILL_STEP"]
        ):
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, *args, **kwargs)

    cls.training_step = training_step


def extract(module):  # at the first block of the first hidden-state file
    write = module.NpyWriter.write

    def dying_write(self, start, block):
        write(self, start, block)
        crash_everything()

    module.NpyWriter.write = dying_write


def probe(module):  # the probe table fully written, not yet renamed into place
    atomic_path = module.atomic_path

    @contextlib.contextmanager
    def dying_atomic_path(path, **kwargs):
        with atomic_path(path, **kwargs) as tmp:
            yield tmp
            if "results/probes/" in str(path):
                crash_everything()

    module.atomic_path = dying_atomic_path


HOOKS = {
    "finetune": ("bioprobe.training.resume", finetune),
    "extract": ("bioprobe.analysis.dumpio", extract),
    "probe": ("bioprobe.pipeline.tables", probe),
}
if MODE in HOOKS:
    after_import(*HOOKS[MODE])
'''


def _results(workdir: Path, pattern: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for p in sorted((workdir / "results").glob(pattern))
    }


def _temporaries(workdir: Path, stage: str) -> list[Path]:
    return sorted((workdir / "results" / stage).rglob(".*.tmp"))


@pytest.fixture(scope="session")
def interrupted_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("interrupted-run")
    hooks = tmp_path_factory.mktemp("kill-hooks")
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    config = copy.deepcopy(TINY_CONFIG)
    config["models"] = {MODEL: config["models"][MODEL]}
    write_config(workdir, {**config, "keep_dumps": False})
    seen: dict = {}

    def run(kill: str | None, *args: str):
        env = {"PYTHONPATH": str(hooks)}
        if kill:
            env |= {
                "BIOPROBE_TEST_KILL": kill,
                "BIOPROBE_TEST_KILL_TARGET": KILLED_FINETUNE,
                "BIOPROBE_TEST_KILL_STEP": str(KILL_AT_STEP),
            }
        return snakemake(workdir, *args, *([] if "--unlock" in args else TARGETS), env=env)

    # 1. a fine-tuning job dies half-way; Snakemake reports it and stops
    result = run("finetune", "--cores", "2")
    assert result.returncode != 0, result.stderr[-3000:]
    checkpoints = workdir / "results" / "checkpoints" / KILLED_FINETUNE
    seen["checkpoints"] = sorted(p.name for p in checkpoints.glob("checkpoint-*"))
    seen["model_after_kill"] = (workdir / "results" / "models" / KILLED_FINETUNE).exists()

    # 2. and 3. the whole workflow dies while a dump, then a probe table, is being written
    for stage in ("dumps", "probes"):
        kill = "extract" if stage == "dumps" else "probe"
        result = run(kill, "--cores", "2")
        assert result.returncode != 0, result.stderr[-3000:]
        left = _temporaries(workdir, stage)
        seen[stage] = {
            "temporaries": [str(p.relative_to(workdir)) for p in left],
            # the final path of each temporary ('.seed1.abcd1234.tmp' -> 'seed1')
            "finished": [p.with_name(p.name[1:].rsplit(".", 2)[0]).exists() for p in left],
        }
        assert run(None, "--unlock").returncode == 0
        seen[f"planned_after_{stage}"] = planned_jobs(run(None, "-n", "--cores", "2"))

    # 4. a plain re-run finishes the grid
    result = run(None, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seen["planned_after_all"] = planned_jobs(run(None, "-n", "--cores", "2"))
    return workdir, seen


def test_killed_finetune_resumes_from_its_last_checkpoint(interrupted_run, tiny_run):
    workdir, seen = interrupted_run
    assert seen["checkpoints"] == ["checkpoint-4"] and not seen["model_after_kill"]
    metrics = json.loads(
        (workdir / "results" / "models" / KILLED_FINETUNE / "train_metrics.json").read_text()
    )
    # resumed from a checkpoint of the killed attempt; the later whole-workflow kills may
    # catch this job again, after any later save (every 4 steps, and the last step's, 13)
    resumed = re.fullmatch(r"checkpoint-(\d+)", metrics["resumed_from"])
    assert resumed and int(resumed[1]) in {4, 8, 12, 13}, metrics["resumed_from"]
    assert metrics["global_steps"] == 13
    log = (workdir / "logs" / "finetune" / f"{KILLED_FINETUNE}.log").read_text()
    assert f"resuming from checkpoint results/checkpoints/{KILLED_FINETUNE}/checkpoint-" in log
    assert not (workdir / "results" / "checkpoints" / KILLED_FINETUNE).exists()  # cleaned up
    name = f"eval/{KILLED_FINETUNE}.json"
    assert _results(workdir, name) == _results(tiny_run, name)


@pytest.mark.parametrize(("stage", "rule"), [("dumps", "extract"), ("probes", "probe")])
def test_a_killed_job_leaves_nothing_that_looks_complete(interrupted_run, stage, rule):
    workdir, seen = interrupted_run
    assert seen[stage]["temporaries"], f"no {rule} job was caught half-way"
    assert not any(seen[stage]["finished"])  # only hidden temporaries, never the output
    assert seen[f"planned_after_{stage}"].get(rule, 0) >= 1  # so the next run redoes it
    assert _temporaries(workdir, stage) == []  # and removed what the killed job left


def _rows_of(table: Path, model: str) -> list[str]:
    header, *rows = table.read_text().splitlines()
    return [header, *(row for row in rows if row.split("\t")[1] == model)]


def test_two_runs_give_byte_identical_results(interrupted_run, tiny_run):
    workdir, _ = interrupted_run
    for stage, suffix in (
        ("eval", "json"),
        ("probes", "tsv"),
        ("attention", "tsv"),
        ("representation_similarity", "tsv"),
    ):
        pattern = f"{stage}/*/{MODEL}/**/*.{suffix}"
        ours, theirs = _results(workdir, pattern), _results(tiny_run, pattern)
        assert ours and ours.keys() == theirs.keys(), pattern
        different = [name for name in ours if ours[name] != theirs[name]]
        assert not different, different
    for name in TABLES:  # the collected tables, restricted to the model both runs have
        ours, theirs = (d / "results" / "tables" / f"{name}.tsv" for d in (workdir, tiny_run))
        assert ours.read_text().splitlines() == _rows_of(theirs, MODEL), name


def test_temporary_dumps_are_deleted_once_every_consumer_has_run(interrupted_run, tiny_run):
    workdir, seen = interrupted_run
    assert not [p for p in (workdir / "results" / "dumps").rglob("seed*") if p.is_dir()]
    assert [p for p in (tiny_run / "results" / "dumps").rglob("seed*") if p.is_dir()]  # kept
    assert seen["planned_after_all"] == {}  # deleted dumps do not make anything out of date


@pytest.mark.parametrize(
    ("change", "target", "says"),
    [
        (lambda c: c["training"].update(learnig_rate=1e-3), None,
         "config key 'training.learnig_rate': unknown key (did you mean 'learning_rate'?)"),
        (lambda c: c.update(sizes=[0, 150]), None, "config key 'sizes.1'"),
        (lambda c: None, "results/eval/no-such-task/tiny-bert/full/size50/seed1.json",
         "config key 'tasks.no-such-task': task 'no-such-task' is referenced"),
        (lambda c: None, "results/models/demo-ner/gpt5/full/size50/seed1",
         "config key 'models.gpt5': model 'gpt5' is referenced"),
    ],
)  # fmt: skip
def test_a_config_mistake_stops_before_any_job(tmp_path, change, target, says):
    config = copy.deepcopy(TINY_CONFIG)
    change(config)
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--cores", "1", *([target] if target else []))
    assert result.returncode != 0
    assert says in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
