"""Prompting runs: config checks, prompt texts, demonstrations, each task type's questions and
how answers become its scores, and a run on tiny scratch decoders and a T5."""

from __future__ import annotations

import json

import pytest

from bioprobe import methods, tasks
from bioprobe.config import validate_config
from bioprobe.data import prepare_task
from bioprobe.data.demo import task_config, write_corpus
from bioprobe.data.task_data import TaskData
from bioprobe.errors import ConfigError
from bioprobe.models import resolve_model
from bioprobe.pipeline import grid
from bioprobe.pipeline.jobs import job_at
from bioprobe.prompting.prompts import PromptFormat, Question, stratified_draw
from bioprobe.prompting.run import Encoder, build_prompts, check_verbalizer, evaluate_prompting
from bioprobe.prompting.schemes import gold_mentions, scheme_for
from bioprobe.settings import PromptingSettings, TaskPromptSettings

from .conftest import TINY_SCRATCH

#: a demo corpus of every task type (bioprobe.data.demo.CORPORA keys)
CORPORA = {
    "ner": "ner",
    "pair": "nli",
    "relation": "relation",
    "pico": "pico",
    "similarity": "similarity",
    "multilabel": "multilabel",
}
SIZES = {
    "multilabel": {"n_train": 6, "n_validation": 3, "n_test": 3},  # documents of several texts
    "pico": {"n_train": 6, "n_validation": 3, "n_test": 3},
}


def _config(**methods_):
    return {
        "tasks": {"t": task_config("pair", "raw")},
        "models": {"m": {"source": "x"}},
        "methods": methods_ or {"zero-shot": {"kind": "prompting"}},
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Every task type's demo corpus, prepared: type -> task directory."""
    out = {}
    for task_type, corpus in CORPORA.items():
        root = tmp_path_factory.mktemp(f"prompt-{task_type}")
        write_corpus(corpus, root / "raw", **SIZES.get(task_type, {}))
        cfg = validate_config(
            {
                "tasks": {"t": task_config(task_type, str(root / "raw"))},
                "models": {"m": {"source": "x"}},
            }
        )
        prepare_task(cfg["tasks"]["t"], root / "data", "t")
        out[task_type] = root / "data"
    return out


# --------------------------------------------------------------------------------- config


def test_defaults_and_grid():
    cfg = validate_config(
        _config(**{"full": {}, "few-shot-2": {"kind": "prompting", "shots": 2}})
        | {"sizes": [0, 50], "seeds": [1, 2]}
    )
    method = cfg["methods"]["few-shot-2"]
    assert method == {
        "kind": "prompting",
        "shots": 2,
        "templates": {},
        "instruction": None,
        "chat_template": "auto",
        "length_normalise": False,
        "max_new_tokens": 48,
        "batch_size": 8,
    }
    assert cfg["tasks"]["t"]["prompt"] == {"instruction": None, "verbalizer": {}}
    PromptingSettings.from_config(method)  # schema and settings agree
    runs = grid.eval_runs(cfg)
    prompted = [r for r in runs if r.method == "few-shot-2"]
    assert [(r.size, r.seed) for r in prompted] == [(0, 1), (0, 2)]
    assert {r.method for r in grid.finetune_runs(cfg)} == {"full"}


def test_an_encoder_is_refused_naming_model_and_method():
    with pytest.raises(ConfigError) as err:
        methods.check_model_supported(
            {"zero-shot": {"kind": "prompting"}}, {"model_type": "bert"}, "pair", "models.minilm"
        )
    assert err.value.key == "methods.zero-shot"
    assert "models.minilm" in str(err.value) and "encoder" in str(err.value)
    for family in ("gpt2", "biogpt", "llama", "t5"):
        methods.check_model_supported(
            {"zero-shot": {"kind": "prompting"}}, {"model_type": family}, "ner", "models.x"
        )


@pytest.mark.parametrize(
    ("template", "key"),
    [
        ({"templates": {"pair": "{text} ->"}}, "methods.p.templates.pair"),
        ({"templates": {"ner": "{text} {label}"}}, "methods.p.templates.ner"),
        ({"instruction": "Answer {entity}."}, "methods.p.instruction"),
        ({"templates": {"pair": "{text_a"}}, "methods.p.templates.pair"),
    ],
)
def test_a_placeholder_the_type_cannot_fill_is_refused(template, key):
    with pytest.raises(ConfigError) as err:
        validate_config(_config(p={"kind": "prompting", **template}))
    assert err.value.key == key


def test_a_task_type_template_for_its_own_fields_passes():
    validate_config(
        _config(
            p={"kind": "prompting", "templates": {"pair": "Q: {text_a} C: {text_b} ({options})"}}
        )
    )


def test_verbalizer_names_known_labels_and_keeps_them_apart():
    pair = tasks.get("pair")
    check_verbalizer({"entailment": "yes"}, ["entailment", "neutral"], pair, "k")
    with pytest.raises(ConfigError, match="not a label") as err:
        check_verbalizer({"entailed": "yes"}, ["entailment", "neutral"], pair, "k")
    assert err.value.key == "k.entailed"
    with pytest.raises(ConfigError, match="share one answer"):
        check_verbalizer({"entailment": "neutral"}, ["entailment", "neutral"], pair, "k")
    ner = tasks.get("ner")
    check_verbalizer({"Disease": "disease"}, ["O", "B-Disease", "I-Disease"], ner, "k")


# --------------------------------------------------------------------------------- prompts


def test_prompt_text_instruction_demonstrations_question():
    fmt = PromptFormat(
        template="A: {text_a}\nB: {text_b}\nAnswer:", instruction="Pick {options}.", chat=False
    )
    q = Question({"text_a": "x", "text_b": "y"}, ("yes", "no"), "yes")
    demo = Question({"text_a": "u", "text_b": "v"}, ("yes", "no"), "no")
    assert fmt.text(q, [demo]) == ("Pick yes, no.\n\nA: u\nB: v\nAnswer: no\n\nA: x\nB: y\nAnswer:")
    assert PromptFormat("{text_a}", "", chat=True).text(q, [demo]) == "u" + "no" + "\n\n" + "x"


def test_demonstrations_are_stratified_seeded_and_shuffled():
    records = [{"id": i, "label": "pos" if i < 5 else "neg"} for i in range(100)]
    stratum = lambda r: (r["label"],)  # noqa: E731
    draws = [stratified_draw(records, 2, stratum, seed, "t") for seed in range(1, 9)]
    assert all({r["label"] for r in d} == {"pos", "neg"} for d in draws), "both labels"
    assert stratified_draw(records, 2, stratum, 1, "t") == draws[0], "same seed, same draw"
    assert len({tuple(r["id"] for r in d) for d in draws}) > 4, "seeds draw differently"
    assert len(stratified_draw(records, 500, stratum, 1, "t")) == 100
    assert stratified_draw(records, 0, stratum, 1, "t") == []


def test_gold_mentions_read_bio_and_io_spans():
    tokens = ["Breast", "cancer", "and", "HD", "HD", "."]
    assert gold_mentions(tokens, ["B-D", "I-D", "O", "B-D", "B-D", "O"], "D") == [
        "Breast cancer",
        "HD",
        "HD",
    ]
    assert gold_mentions(tokens, ["I-P", "I-P", "O", "I-P", "I-P", "O"], "P") == [
        "Breast cancer",
        "HD HD",
    ]


# ------------------------------------------------------------- answers -> the task's scores


def _oracle(question: Question, generates: bool):
    """The gold answer as a model that always knows it would give it."""
    if generates:
        return question.answer
    return [0.0 if option == question.answer else -5.0 for option in question.options]


@pytest.mark.parametrize("task_type", sorted(CORPORA))
def test_gold_answers_score_like_gold_predictions(prepared, task_type):
    """Every scheme's questions carry the gold answer its demonstrations show; answered with
    it, a split scores as the task's gold labels do (similarity: its scale rounds the gold
    scores, so Pearson is high but below 1)."""
    task = TaskData(prepared[task_type])
    scheme = scheme_for(task.type, task.labels, {})
    records = task.split("test")
    predicted = []
    for record in records:
        answers = [_oracle(q, scheme.generates) for q in scheme.questions(record)]
        prediction = scheme.prediction(record, answers)
        if scheme.generates:
            prediction, counts = prediction
            assert counts == {"invalid_generations": 0, "unmatched_mentions": 0}
        predicted.append(prediction)
    scores = task.type.score_rows(
        task.labels, task.type.prediction_rows(task.labels, records, predicted)
    )
    main = scores[task.type.main_metric]
    if task_type == "similarity":
        assert 0.9 < main < 1.0
    else:
        assert main == pytest.approx(1.0), scores


def test_choice_ranks_by_likelihood_and_scale_averages():
    pair = tasks.get("pair")
    scheme = scheme_for(pair, ["a", "b", "c"], {})
    assert scheme.prediction({}, [[-3.0, -1.0, -2.0]]) == 1
    sim = scheme_for(tasks.get("similarity"), [], {})
    assert sim.prediction({}, [[0.0] * 5]) == pytest.approx(2.0)
    assert sim.prediction({}, [[-50, -50, -50, -50, 0.0]]) == pytest.approx(4.0)


# --------------------------------------------------------------------------- real models


@pytest.mark.parametrize("family", ["gpt2", "llama", "t5"])
def test_options_continue_the_prompt_as_one_encoding_would(request, family):
    """A decoder's answer tokens are those of prompt + answer encoded together after the
    prompt's (no merge across the boundary is lost); T5's decoder reads the answer alone."""
    from types import SimpleNamespace

    from bioprobe.models import load_tokenizer_for, read_model_config

    location = request.getfixturevalue(f"tiny_{family}_dir")
    spec = resolve_model(
        "m", {"source": "scratch", "scratch": TINY_SCRATCH[family]}, scratch_dir=location
    )
    tokenizer = load_tokenizer_for(spec)
    config = SimpleNamespace(**read_model_config(spec, location))
    fmt = PromptFormat("Sentence: {text}\nAnswer:", "", chat=False)
    encoder = Encoder(tokenizer, config, fmt)
    text = fmt.text(Question({"text": "aspirin inhibits COX-2"}, ("no",), "no"), [])
    ids = encoder.prompt(text)
    option = encoder.option(text, ids, "inhibition of the enzyme")
    if family == "t5":
        assert (
            option == tokenizer("inhibition of the enzyme", add_special_tokens=False)["input_ids"]
        )
        assert ids[-1] == tokenizer.eos_token_id  # T5's encoder input ends with </s>
    else:
        whole = tokenizer(text + " inhibition of the enzyme")["input_ids"]
        assert ids + option == whole
        assert ids[-1] != tokenizer.eos_token_id


@pytest.mark.parametrize("family", ["llama", "t5"])
@pytest.mark.parametrize("task_type", sorted(CORPORA))
def test_a_run_on_every_task_type(request, prepared, task_type, family, one_torch_thread):
    location = request.getfixturevalue(f"tiny_{family}_dir")
    spec = resolve_model(
        "m", {"source": "scratch", "scratch": TINY_SCRATCH[family]}, scratch_dir=location
    )
    job = job_at(prepared[task_type], spec, 3, location=location)
    method = PromptingSettings(shots=2, max_new_tokens=6, batch_size=4)
    result = evaluate_prompting(
        job, method, TaskPromptSettings(), method_key="methods.p", task_key="tasks.t"
    )
    task = TaskData(prepared[task_type])
    json.dumps(result)  # the evaluation JSON holds plain values only
    info = result["prompting"]
    assert info["shots"] == 2 and len(info["demonstrations"]) == 2
    assert info["scoring"] == (
        "generation" if task.type.prompt_scheme == "mentions" else "rank classification"
    )
    scheme = scheme_for(task.type, task.labels, {})
    per_example = {
        "mentions": len(getattr(scheme, "entity_types", ())),
        "per_label": len(task.labels),
    }.get(task.type.prompt_scheme, 1)
    for split in ("validation", "test"):
        stats = info["splits"][split]
        n = len(task.split(split))
        assert stats["questions"] == n * per_example
        assert set(result["scores"][split]) >= {task.type.main_metric}
        rows = result["predictions"]["splits"][split]
        assert len(rows) == n
        if task.type.prompt_scheme == "mentions":
            assert stats["invalid_generations"] <= stats["questions"]
            assert all(set(r["generated"]) == set(scheme.entity_types) for r in rows)
    # the same seed draws the same demonstrations; another seed others
    again = evaluate_prompting(job, method, TaskPromptSettings(), method_key="m", task_key="t")
    assert again["prompting"]["demonstrations"] == info["demonstrations"]
    assert again["scores"] == result["scores"]


def test_prompts_that_outgrow_the_positions_drop_demonstrations(prepared, tiny_gpt2_dir):
    """Past the positions, a prompt drops its last demonstrations, and without any its start:
    no prompt and answer outgrow the limit, and the counts say how many were changed."""
    from types import SimpleNamespace

    from bioprobe.models import load_tokenizer_for

    spec = resolve_model(
        "m", {"source": "scratch", "scratch": TINY_SCRATCH["gpt2"]}, scratch_dir=tiny_gpt2_dir
    )
    tokenizer = load_tokenizer_for(spec)
    task = TaskData(prepared["pair"])
    fmt = PromptFormat(tasks.get("pair").prompt_template, "", chat=False)
    encoder = Encoder(tokenizer, SimpleNamespace(is_encoder_decoder=False), fmt)
    scheme = scheme_for(task.type, task.labels, {})
    test, demos = task.split("test"), task.split("train")[:8]

    def longest(prompted):
        return max(
            len(p) + max(map(len, o))
            for p, o in zip(prompted.prompts, prompted.options, strict=True)
        )

    zero = build_prompts(test, scheme, [], fmt, encoder, None, 6)
    roomy = build_prompts(test, scheme, demos, fmt, encoder, None, 6)
    assert roomy.shortened == roomy.cut == 0
    limit = longest(zero) + 60  # every zero-shot prompt fits, no 8-shot one does
    assert longest(roomy) > limit
    fitted = build_prompts(test, scheme, demos, fmt, encoder, limit, 6)
    assert fitted.shortened == len(test) and fitted.cut == 0
    assert longest(fitted) <= limit
    assert any(len(f) > len(z) for f, z in zip(fitted.prompts, zero.prompts, strict=True)), (
        "some shots kept"
    )
    tight = build_prompts(test, scheme, demos, fmt, encoder, 24, 6)
    assert tight.cut > 0 and longest(tight) <= 24


def test_an_encoder_is_refused_in_the_job_too(prepared, tiny_bert_dir):
    """A Hub model's config is unknown at planning: the job refuses it before loading."""
    spec = resolve_model(
        "m", {"source": "scratch", "scratch": TINY_SCRATCH["bert"]}, scratch_dir=tiny_bert_dir
    )
    job = job_at(prepared["pair"], spec, 1, location=tiny_bert_dir)
    with pytest.raises(ConfigError, match="encoder") as err:
        evaluate_prompting(
            job, PromptingSettings(), TaskPromptSettings(), method_key="methods.zs", task_key="t"
        )
    assert err.value.key == "methods.zs"


CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_a_chat_template_wraps_the_prompt_as_one_user_turn(tiny_llama_dir):
    """With a chat template (auto: where the tokenizer has one), the prompt is one user turn
    and the answer starts the assistant's reply: no space before it, no second BOS; always
    without a template, and never with one, do what they say."""
    from types import SimpleNamespace

    from bioprobe.models import load_tokenizer_for
    from bioprobe.prompting.run import uses_chat_template

    spec = resolve_model(
        "m", {"source": "scratch", "scratch": TINY_SCRATCH["llama"]}, scratch_dir=tiny_llama_dir
    )
    tokenizer = load_tokenizer_for(spec)
    assert not uses_chat_template(tokenizer, "auto", "methods.p")
    with pytest.raises(ConfigError) as err:
        uses_chat_template(tokenizer, "always", "methods.p")
    assert err.value.key == "methods.p.chat_template"
    tokenizer.chat_template = CHAT
    assert uses_chat_template(tokenizer, "auto", "k")
    assert not uses_chat_template(tokenizer, "never", "k")
    fmt = PromptFormat("Sentence: {text}\nAnswer:", "Say yes or no.", chat=True)
    encoder = Encoder(tokenizer, SimpleNamespace(is_encoder_decoder=False), fmt)
    question = Question({"text": "aspirin inhibits COX-2"}, ("yes", "no"), "yes")
    text = fmt.text(question, [])
    ids = encoder.prompt(text)
    decoded = tokenizer.decode(ids)
    assert decoded.startswith("<|user|>Say yes or no.") and decoded.endswith("<|assistant|>")
    assert ids.count(tokenizer.bos_token_id) <= 1
    option = encoder.option(text, ids, "yes")
    assert tokenizer.decode(option).strip() == "yes"
    wrapped = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    assert ids + option == tokenizer(wrapped + "yes", add_special_tokens=False)["input_ids"]
