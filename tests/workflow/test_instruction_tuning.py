"""Instruction tuning through `snakemake`: a scratch LLaMA and a scratch T5 LoRA-tuned on the
demo instruction set (written by the workflow), evaluated zero- and few-shot on an NER and a pair
task, and analysed as variants (dumps, probes, attention similarity, CKA) beside full
fine-tuning on each task; the instruction-tuning figure drawn from them.

A scratch model's weights are built per task (its tokenizer learns the task's corpus), so each
is instruction-tuned once per task: four tunings, each from the weights its task's pretrained
variant has, which is what its analyses compare against.
"""

import json

import pytest
from PIL import Image

from bioprobe.data import demo
from bioprobe.instructions.demo import DEMO_SIZE

from .conftest import (
    LLM_MODELS,
    PROMPTING,
    planned_jobs,
    run_on_demo_corpora,
    snakemake,
    table,
    write_config,
)

pytestmark = pytest.mark.workflow

MODELS = LLM_MODELS
TASKS = {"ner": ("ner", "entity_f1"), "nli": ("pair", "macro_f1")}
INSTRUCTED = {f"instruct+{p}" for p in PROMPTING}
CONFIG = {
    "tasks": {task: demo.task_config(kind, f"raw/{task}") for task, (kind, _) in TASKS.items()},
    "models": MODELS,
    "methods": {"full": {}, "instruct": {"kind": "instruction", "r": 2}, **PROMPTING},
    "sizes": [0, 100],
    "seeds": [1],
    "random_init": False,
    "training": {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-3, "max_length": 96},
    # the demo's instructions tokenized by the tiny task tokenizers: long prompts
    "instructions": {"training": {"max_length": 256, "learning_rate": 3.0e-3, "logging_steps": 2}},
    "attention": {"max_examples": 8},
    "probe": {"control_draws": 1, "mdl": False},
    "erasure": {"enabled": False},
}
TABLES = ["downstream", "probes", "attention_similarity", "representation_similarity"]


@pytest.fixture(scope="module")
def instruct_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("instruction-tuning")
    targets = [f"results/tables/{name}.tsv" for name in TABLES]
    figures = ["results/figures/instruction_tuning.png", "results/figures/downstream.png"]
    return run_on_demo_corpora(workdir, CONFIG, [*targets, *figures])


def test_each_model_is_instruction_tuned_on_the_demo_set_with_lora(instruct_run):
    records = (instruct_run / "results/instructions/records.jsonl").read_text().splitlines()
    assert len(records) == DEMO_SIZE
    for model in MODELS:
        for task in TASKS:
            tuned = instruct_run / f"results/instruct/{model}/{task}/instruct/size100/seed1"
            info = json.loads((tuned / "instruction_tuning.json").read_text())
            assert info["method"]["kind"] == "lora" and info["method"]["r"] == 2
            assert info["instructions"] == DEMO_SIZE
            # a scratch model is tuned from the weights built on its task's corpus
            assert info["base"] == f"results/pretrained/{task}/{model}"
            # no chat template in a scratch tokenizer: the plain one, saved with the model
            assert info["prompt"] == "the plain template"
            tokenizer = json.loads((tuned / "tokenizer_config.json").read_text())
            assert "### Instruction" in (
                tokenizer.get("chat_template") or (tuned / "chat_template.jinja").read_text()
            )
            metrics = json.loads((tuned / "train_metrics.json").read_text())
            assert metrics["global_steps"] > 0 and metrics["instructions"]["dropped"] == 0
            losses = metrics["logged_losses"]
            assert losses and losses[-1] < losses[0]  # it learnt the responses
            assert (tuned / "model.safetensors").is_file()
            assert not (tuned / "adapter_config.json").exists()  # merged: a plain checkpoint
            log = instruct_run / f"logs/instruction_tune/{model}/{task}/instruct/size100/seed1.log"
            assert "ETA" in log.read_text() and "steps" in log.read_text()


def test_the_instruction_tuned_models_are_scored_by_every_prompting_method(instruct_run):
    downstream = table(instruct_run, "downstream")
    test = downstream[downstream.split == "test"]
    for task, (_, metric) in TASKS.items():
        for model in MODELS:
            got = test[(test.task == task) & (test.model == model) & (test.metric == metric)]
            assert set(got.method) == {"pretrained", "full", *PROMPTING, *INSTRUCTED}
            instructed = got[got.method.isin(INSTRUCTED)]
            assert set(instructed["size"]) == {100}  # percent of the instruction set
            assert instructed.value.between(0, 1).all() and instructed.ci_low.notna().all()
            path = f"results/eval/{task}/{model}/instruct+few-shot-2/size100/seed1.json"
            evaluation = json.loads((instruct_run / path).read_text())
            assert evaluation["prompting"]["shots"] == 2
            assert evaluation["method"] == "instruct+few-shot-2" and evaluation["size"] == 100


def test_the_instruction_tuned_models_are_analysed_like_any_variant(instruct_run):
    """Probe, attention and CKA rows of method `instruct` on each task and model, compared with
    the pretrained weights it was tuned from; LoRA moved them (CKA below 1 in the last layer)."""
    probes = table(instruct_run, "probes")
    attention = table(instruct_run, "attention_similarity")
    similarity = table(instruct_run, "representation_similarity")
    for task in TASKS:
        for model in MODELS:
            here = {
                name: t[(t.task == task) & (t.model == model) & (t.method == "instruct")]
                for name, t in (("p", probes), ("a", attention), ("s", similarity))
            }
            assert set(here["p"].layer) == {0, 1, 2} and here["p"].value.notna().all()
            assert set(here["p"]["size"]) == {100}
            cosine = here["a"][here["a"].metric == "cosine"]
            assert set(cosine.layer) == {1, 2} and cosine.value.between(-1, 1 + 1e-6).all()
            cka = here["s"][here["s"].metric == "cka"].set_index("layer").value
            assert list(cka.index) == [0, 1, 2] and cka.between(0, 1 + 1e-6).all()
            assert cka[2] < 1 - 1e-4, (task, model, cka.to_dict())
            log = instruct_run / f"logs/extract/{task}/{model}/instruct/size100/seed1.log"
            assert f"results/instruct/{model}/{task}/instruct/size100/seed1" in log.read_text()
    # the analyses and prompting never see an instructed method's id as a variant
    for t in (probes, attention, similarity):
        assert not set(t.method) & INSTRUCTED


def test_the_figure_shows_both_kinds_of_tuning(instruct_run):
    png = instruct_run / "results/figures/instruction_tuning.png"
    image = Image.open(png)
    assert image.width > 1200 and image.height > 4 * 300  # a row per task x model
    assert (instruct_run / "results/figures/instruction_tuning.pdf").stat().st_size > 10_000
    log = (instruct_run / "logs/plot_instruction_tuning.log").read_text()
    assert "instruction_tuning.png" in log


def test_erasure_and_examples_plan_no_instruction_variant(instruct_run):
    """Erasure needs a task head (an instruction-tuned model has none): with erasure on, the
    plan erases the fine-tuned runs only."""
    config = {**CONFIG, "erasure": {"enabled": True}}
    write_config(instruct_run, config)
    try:
        result = snakemake(instruct_run, "--cores", "2", "results/tables/erasure.tsv", "-n")
    finally:
        write_config(instruct_run, CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result)["erasure"] == len(TASKS) * len(MODELS)  # full, size 100


def test_an_encoder_is_refused_at_planning(tmp_path):
    workdir = tmp_path
    demo.write_demo_ner(workdir / "raw" / "ner", n_train=10, n_validation=5, n_test=5)
    bert = {"source": "scratch", "scratch": {"family": "bert", "hidden_size": 16,
                                              "num_layers": 1, "num_heads": 2}}  # fmt: skip
    config = {**CONFIG, "tasks": {"ner": CONFIG["tasks"]["ner"]}, "models": {"enc": bert},
              "methods": {"instruct": {"kind": "instruction"}}}  # fmt: skip
    write_config(workdir, config)
    result = snakemake(workdir, "--cores", "1", "-n")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    lines = [line for line in said.splitlines() if line.startswith("config key")]
    assert len(lines) == 1, said[-2000:]
    assert lines[0].startswith("config key 'methods.instruct': instruct cannot run models.enc:")
    assert "'bert' is an encoder" in lines[0]


def test_a_bad_instruction_record_is_one_line_naming_file_and_line(tmp_path):
    """A user's JSON Lines set whose third record has no output: the prepare stage stops with
    one line naming the file and the line, and writes nothing."""
    workdir = tmp_path
    records = [
        {"instruction": "Define anaemia.", "output": "A low haemoglobin."},
        {"instruction": "Name the drug.", "input": "Aspirin helps.", "output": "aspirin"},
        {"instruction": "Summarise the report.", "input": "A man with fever."},
    ]
    path = workdir / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    demo.write_demo_ner(workdir / "raw" / "ner", n_train=10, n_validation=5, n_test=5)
    config = {**CONFIG, "tasks": {"ner": CONFIG["tasks"]["ner"]},
              "instructions": {"source": str(path), "format": "jsonl"}}  # fmt: skip
    write_config(workdir, config)
    result = snakemake(workdir, "--cores", "1", "results/instructions/records.jsonl")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    errors = [line for line in said.splitlines() if "ERROR bioprobe" in line]
    assert errors and f"{path}:3" in errors[0] and "no output" in errors[0], said[-3000:]
    assert not (workdir / "results/instructions/records.jsonl").exists()
    # fixed, the set is read; replacing the file prepares it again
    path.write_text("".join(json.dumps(r) + "\n" for r in records[:2]))
    assert snakemake(workdir, "--cores", "1", "results/instructions/records.jsonl").returncode == 0
    prepared = (workdir / "results/instructions/records.jsonl").read_text().splitlines()
    assert [json.loads(line)["output"] for line in prepared] == ["A low haemoglobin.", "aspirin"]
