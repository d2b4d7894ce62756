"""Scratch LLaMA and T5 through `snakemake`: full fine-tuning and LoRA on an NER and a pair
task, then evaluation, dumps, probes, attention similarity and representation similarity (CKA,
Procrustes, SVCCA); zero- and few-shot prompting of both beside them, in the downstream table
and figure (tests/workflow/test_prompting.py prompts the other task types).

Small enough for a few minutes on two cores: tiny models on a small demo corpus, one seed, the
100 % size and the pretrained models (no random-init copy), the tables only (no figures, no
report), and no erasure (its eight jobs would add a sixth to the run; tests/workflow/
test_families.py erases every family at library level). T5 is analysed through its encoder
stack: its tables have one row per encoder layer, like every other family's.
"""

import json

import pytest

from bioprobe.data import demo

from .conftest import LLM_MODELS, PROMPTING, run_on_demo_corpora, table

pytestmark = pytest.mark.workflow

MODELS = LLM_MODELS
TASKS = {"ner": ("ner", "entity_f1"), "nli": ("pair", "macro_f1")}
CONFIG = {
    "tasks": {task: demo.task_config(kind, f"raw/{task}") for task, (kind, _) in TASKS.items()},
    "models": MODELS,
    "methods": {"full": {}, "lora": {"r": 2}, **PROMPTING},
    "sizes": [0, 100],
    "seeds": [1],
    "random_init": False,
    "training": {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-3, "max_length": 96},
    "attention": {"max_examples": 8},
    "probe": {"control_draws": 1, "mdl": False},
    "erasure": {"enabled": False},
}
TABLES = ["downstream", "probes", "attention_similarity", "representation_similarity"]
FINE_TUNED = {"full", "lora"}


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("llm-families")
    targets = [f"results/tables/{name}.tsv" for name in TABLES]
    return run_on_demo_corpora(workdir, CONFIG, [*targets, "results/figures/downstream.png"])


def test_every_variant_is_fine_tuned_and_scored(llm_run):
    downstream = table(llm_run, "downstream")
    test = downstream[downstream.split == "test"]
    for task, (_, metric) in TASKS.items():
        for model in MODELS:
            got = test[(test.task == task) & (test.model == model) & (test.metric == metric)]
            assert set(got.method) == {"pretrained", *FINE_TUNED, *PROMPTING}, (task, model)
            assert got.value.between(0, 1).all()
            prompted = got[got.method.isin(list(PROMPTING))]
            assert set(prompted["size"]) == {0} and prompted.ci_low.notna().all()


def test_prompting_counts_its_prompts_and_is_not_analysed(llm_run):
    """The evaluation JSON says what the prompts held; a prompting method gets no dump, probe
    or comparison (the analyses read the pretrained model it runs); the downstream figure is
    drawn with it (its markers and lines: tests/unit/test_figures.py)."""
    n = 40  # validation and test examples
    for model in MODELS:
        ner = json.loads(
            (llm_run / f"results/eval/ner/{model}/few-shot-2/size0/seed1.json").read_text()
        )
        info = ner["prompting"]
        assert info["shots"] == 2 and info["scoring"] == "generation"
        assert len(info["demonstrations"]) == 2
        for split in ("validation", "test"):
            stats = info["splits"][split]
            assert stats["examples"] == n and stats["questions"] == 2 * n  # 2 entity types
            assert 0 <= stats["invalid_generations"] <= stats["questions"]
            assert stats["unmatched_mentions"] >= 0
        nli = json.loads(
            (llm_run / f"results/eval/nli/{model}/zero-shot/size0/seed1.json").read_text()
        )
        assert nli["prompting"]["shots"] == 0
        assert nli["prompting"]["scoring"] == "rank classification"
        log = (llm_run / f"logs/prompt/ner/{model}/few-shot-2/size0/seed1.log").read_text()
        assert "2-shot" in log and "ETA" in log
    for name in ("probes", "attention_similarity", "representation_similarity"):
        assert not set(table(llm_run, name).method) & set(PROMPTING), name
    assert not list((llm_run / "results" / "dumps").glob("*/*/*-shot*"))
    assert (llm_run / "results" / "figures" / "downstream.png").stat().st_size > 20_000


def test_every_analysis_reads_each_layer_of_the_analysed_stack(llm_run):
    """Layers 0 (embeddings), 1, 2: T5's two encoder blocks (its decoder is not read)."""
    probes = table(llm_run, "probes")
    attention = table(llm_run, "attention_similarity")
    similarity = table(llm_run, "representation_similarity")
    for task in TASKS:
        for model in MODELS:
            p = probes[(probes.task == task) & (probes.model == model)]
            assert set(p.method) == {"pretrained", *FINE_TUNED}
            assert set(p.layer) == {0, 1, 2} and p.value.notna().all()
            for method in FINE_TUNED:
                a = attention[
                    (attention.task == task)
                    & (attention.model == model)
                    & (attention.method == method)
                ]
                assert {"cosine", "js_divergence", "entropy"} <= set(a.metric)
                assert set(a.layer) == {1, 2} and set(a["head"]) == {1, 2}
                assert a.value.notna().all()
                s = similarity[
                    (similarity.task == task)
                    & (similarity.model == model)
                    & (similarity.method == method)
                ]
                cka = s[s.metric == "cka"]
                assert list(cka.layer) == [0, 1, 2] and cka.value.between(0, 1 + 1e-6).all()
                assert {"procrustes", "svcca"} <= set(s.metric)
    meta = llm_run / "results" / "dumps" / "ner" / "tiny-t5" / "lora" / "size100" / "seed1"
    assert json.loads((meta / "meta.json").read_text())["n_layers"] == 2


def test_lora_adapts_each_familys_default_modules_and_trains_its_head(llm_run):
    """LLaMA and T5: every linear projection (T5's of every attention, encoder, decoder and
    cross, and of the feed-forward: peft records the names listed, those a model lacks too). The
    head trains beside the adapters: LLaMA's `score`, T5's `classifier` (token head) or
    `classification_head` (sequence head)."""
    expected = {
        "tiny-llama": (
            {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
            {"ner": ["score"], "nli": ["score"]},
        ),
        "tiny-t5": (
            {"q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"},
            {"ner": ["classifier"], "nli": ["classification_head"]},
        ),
    }
    for model, (targets, heads) in expected.items():
        for task in TASKS:
            run = llm_run / "results" / "models" / task / model / "lora" / "size100" / "seed1"
            adapter = json.loads((run / "adapter_config.json").read_text())
            assert set(adapter["target_modules"]) == targets, (model, task)
            # (peft adds its own guesses, `classifier` and `score`, for the head's name)
            assert set(heads[task]) <= set(adapter["modules_to_save"]), (model, task)
