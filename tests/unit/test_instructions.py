"""Instruction tuning: reading and validating instruction sets, nested subsets, the demo set,
the loss mask (response tokens only), and short LoRA runs of tiny LLaMA and T5 whose merged
model loads as a pretrained one."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

from bioprobe.errors import ConfigError, InputError
from bioprobe.instructions import (
    read_instruction_subset,
    read_instructions,
    subsample,
    write_demo_instructions,
    write_instruction_subsets,
)
from bioprobe.instructions.demo import INSTRUCTIONS, demo_records, kind_of

from .conftest import outputs_under_hash_seeds

RECORDS = [
    {"instruction": "Name the drug in the sentence.", "input": "Aspirin reduces fever.",
     "output": "aspirin"},
    {"instruction": "What is metformin used for?", "output": "type 2 diabetes"},
    {"instruction": "Name the disease.", "input": "BRCA1 raises the risk of breast cancer.",
     "output": "breast cancer"},
]  # fmt: skip
CANONICAL = [
    {"id": f"instruction-{i:06d}", "input": "", **r} if "input" not in r else
    {"id": f"instruction-{i:06d}", **r}
    for i, r in enumerate(RECORDS)
]  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)  # one line
    return info.value


def test_the_package_imports_nothing_heavy():
    """Snakemake plans with it: torch, transformers and datasets load only with `sft`."""
    import subprocess
    import sys

    code = (
        "import sys, bioprobe.instructions\n"
        "print([m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- reading -----------------------------------------------------------------------------------


def test_json_jsonl_and_hf_sources_give_the_same_records(tmp_path):
    import datasets

    json_file = write(tmp_path / "set.json", json.dumps(RECORDS, indent=2))
    jsonl_file = write(tmp_path / "set.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS))
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS)}).save_to_disk(saved)
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    datasets.Dataset.from_list(RECORDS).to_parquet(parquet / "train.parquet")

    assert read_instructions(json_file, "json") == CANONICAL
    assert read_instructions(jsonl_file, "jsonl") == CANONICAL
    assert read_instructions(saved, "hf", split="train") == CANONICAL
    assert read_instructions(parquet, "hf", split="train") == CANONICAL
    # a downloaded dataset repository: the directory's one JSON file (BioInstruct's layout)
    repo = tmp_path / "repo"
    repo.mkdir()
    write(repo / "biomed_instruct_25k.json", json.dumps(RECORDS))
    write(repo / "README.md", "# card")
    assert read_instructions(repo, "json") == CANONICAL


def test_fields_rename_the_source_keys(tmp_path):
    renamed = [{"prompt": r["instruction"], "context": r.get("input"), "answer": r["output"]}
               for r in RECORDS]  # fmt: skip
    path = write(tmp_path / "set.json", json.dumps(renamed))
    fields = {"instruction": "prompt", "input": "context", "output": "answer"}
    assert read_instructions(path, "json", fields) == CANONICAL
    # a renamed key is read under its new name only
    error = error_of(read_instructions, path, "json", {**fields, "output": "response"})
    assert "no output (field 'response')" in str(error)
    with pytest.raises(ConfigError, match="not a field of an instruction record") as info:
        read_instructions(path, "json", {"answer": "answer"}, key="instructions.bio")
    assert info.value.key == "instructions.bio.fields.answer"
    with pytest.raises(ConfigError, match="unknown format 'csv'"):
        read_instructions(path, "csv")


ARRAY = """[
  {
    "instruction": "Name the drug.",
    "input": "Aspirin reduces fever.",
    "output": "aspirin"
  },
  {
    "instruction": "Name the disease.",
    %s
  }
]
"""


@pytest.mark.parametrize(
    ("bad", "line", "says"),
    [
        ('"input": "Gout flares.", "note": 1', 7, "record 1: no output (field 'output')"),
        ('"input": "Gout flares.", "output": null', 7, "no output"),
        ('"output": "   "', 7, "empty output"),
        ('"input": 3, "output": "gout"', 7, "field 'input' must be a string, found int"),
        ('"input": "Gout", "output": ["gout"]', 7, "field 'output' must be a string, found list"),
        ('"input": "Gout" "output": "gout"', 9, "invalid JSON: Expecting ',' delimiter"),
    ],
)
def test_json_record_problems_name_the_file_and_the_line_where_the_record_starts(
    tmp_path, bad, line, says
):
    path = write(tmp_path / "set.json", ARRAY % bad)
    error = error_of(read_instructions, path, "json")
    assert (error.path, error.line) == (str(path), line)
    assert says in str(error)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('[\n{"instruction": "", "output": "x"}\n]', 2, "record 0: empty instruction"),
        ('[\n{"instruction": "  ", "output": "x"}\n]', 2, "empty instruction"),
        ('[\n{"output": "x"}\n]', 2, "no instruction"),
        ('[\n{"instruction": "a", "output": "x"},\n"text"\n]', 3, "expected a JSON object"),
        ('[\n{"instruction": "a", "output": "x"},\n]', 3, "invalid JSON"),  # trailing comma
        ('[\n{"instruction": "a", "output": "x"}\n', 3, "expected ',' or ']'"),  # cut short
        ('[{"instruction": "a", "output": "x"}]\n{"a": 1}\n', 2, "text after the array"),
        ('{"instruction": "a", "output": "x"}\n', 1, "format: jsonl"),
        ("[]\n", None, "no instructions"),
    ],
)
def test_json_file_problems(tmp_path, text, line, says):
    path = write(tmp_path / "set.json", text)
    error = error_of(read_instructions, path, "json")
    assert (error.path, error.line) == (str(path), line)
    assert says in str(error)


def test_json_non_utf8_and_missing_files(tmp_path):
    path = tmp_path / "set.json"
    path.write_bytes(b'[\n{"instruction": "a", "output": "x"},\n{"instruction": "\xff"}]')
    assert error_of(read_instructions, path, "json").line == 3
    assert "file not found" in str(error_of(read_instructions, tmp_path / "nope.json", "json"))
    two = tmp_path / "two"
    two.mkdir()
    write(two / "a.json", "[]")
    write(two / "b.json", "[]")
    assert "found 2 (a.json, b.json)" in str(error_of(read_instructions, two, "json"))


@pytest.mark.parametrize(
    ("line3", "says"),
    [
        ('{"instruction": "a"}', "no output"),
        ('{"instruction": "", "output": "x"}', "empty instruction"),
        ('{"instruction": "a", "output": 1}', "must be a string"),
        ('{"instruction": "a", "output": "x"', "invalid JSON"),
        ('["a", "x"]', "expected a JSON object"),
    ],
)
def test_jsonl_problems_name_their_line(tmp_path, line3, says):
    good = json.dumps(RECORDS[0])
    path = write(tmp_path / "set.jsonl", f"{good}\n\n{line3}\n{good}\n")
    error = error_of(read_instructions, path, "jsonl")
    assert (error.path, error.line) == (str(path), 3)
    assert says in str(error)
    array = write(tmp_path / "array.jsonl", json.dumps(RECORDS, indent=1))
    assert "looks like one JSON array" in str(error_of(read_instructions, array, "jsonl"))


def test_hf_problems_name_the_dataset_and_row(tmp_path):
    import datasets

    rows = [*RECORDS, {"instruction": "Name it.", "input": "x", "output": ""}]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "train.parquet")
    error = error_of(read_instructions, tmp_path, "hf", split="train")
    assert f"{tmp_path}[train]: row 3: empty output" in str(error)
    datasets.Dataset.from_list([{"instruction": "a", "answer": "b"}]).to_parquet(
        tmp_path / "other.parquet"
    )
    assert "missing field 'output'" in str(error_of(read_instructions, tmp_path, "hf",
                                                    split="other"))  # fmt: skip


# --- subsets -----------------------------------------------------------------------------------


def test_subsets_are_nested_seeded_and_stratified_by_input(tmp_path):
    records = read_instructions(
        write_demo_instructions(tmp_path, n=200), "json"
    )  # ~1/6 without input
    ids = {size: [r["id"] for r in subsample(records, size, seed=1)] for size in (10, 30, 50, 100)}
    assert [len(v) for v in ids.values()] == [20, 60, 100, 200]
    for small, large in zip((10, 30, 50), (30, 50, 100), strict=True):
        assert ids[large][: len(ids[small])] == ids[small]  # a prefix: nested
    assert sorted(ids[100]) == sorted(r["id"] for r in records)
    assert ids == {s: [r["id"] for r in subsample(records, s, seed=1)] for s in ids}
    assert [r["id"] for r in subsample(records, 30, seed=2)] != ids[30]
    assert len(subsample(records[:3], 1, seed=1)) == 1  # a positive size keeps a record

    share = sum(not r["input"] for r in records) / len(records)
    for size in (10, 30, 50):
        chosen = subsample(records, size, seed=1)
        assert abs(sum(not r["input"] for r in chosen) - share * len(chosen)) <= 1

    path = tmp_path / "subsets" / "seed1.json"
    write_instruction_subsets(records, 1, path)
    assert [r["id"] for r in read_instruction_subset(records, path, 30)] == ids[30]
    error = error_of(read_instruction_subset, records[:-1], path, 30)
    assert "written for an instruction set of 200 records" in str(error)


# --- the demo set ------------------------------------------------------------------------------


def test_demo_set_is_byte_identical_and_holds_every_kind(tmp_path):
    first = write_demo_instructions(tmp_path / "a")
    second = write_demo_instructions(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert write_demo_instructions(tmp_path / "c", seed=1).read_bytes() != first.read_bytes()
    code = (
        "import hashlib, sys, tempfile\n"
        "from bioprobe.instructions import write_demo_instructions\n"
        "path = write_demo_instructions(tempfile.mkdtemp())\n"
        "print(hashlib.sha256(path.read_bytes()).hexdigest())\n"
    )
    assert outputs_under_hash_seeds(code, "") == {
        hashlib.sha256(first.read_bytes()).hexdigest() + "\n"
    }

    raw = json.loads(first.read_text(encoding="utf-8"))
    assert isinstance(raw, list) and all(set(r) == {"instruction", "input", "output"} for r in raw)
    records = read_instructions(first, "json")  # valid by the reader's own rules
    assert len(records) == 300
    kinds = collections.Counter(kind_of(r["instruction"]) for r in records)
    assert kinds == {"qa": 100, "extraction": 100, "generation": 100}
    assert all(r["input"] for r in records if r["instruction"] in INSTRUCTIONS["extraction"])
    assert any(not r["input"] for r in records)  # instructions without input too
    for r in records:  # an extracted disease is one the text mentions
        if r["instruction"] == INSTRUCTIONS["extraction"][0] and r["output"] != "None":
            assert all(m in r["input"] for m in r["output"].split("; "))


def test_demo_set_keeps_the_demo_tasks_evaluation_entities_unseen():
    from bioprobe.data.demo import CHEMICALS, DISEASES

    text = json.dumps(demo_records(300))
    unseen = [e.replace(" ' s", "'s").replace(" - ", "-") for e in DISEASES["eval"]]
    unseen += [e.replace(" - ", "-") for e in CHEMICALS["eval"]]
    assert not [e for e in unseen if e in text]


# --- the loss mask -----------------------------------------------------------------------------


def _tokenizer(model_dir):
    from bioprobe.tokenization import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    tokenizer.padding_side = "right"
    return tokenizer


def _batch(tokenizer, records, *, seq2seq, plain):
    from bioprobe.instructions.sft import build_instruction_features, instruction_collator

    built = build_instruction_features(
        records, tokenizer, seq2seq=seq2seq, plain=plain, max_length=128
    )
    return built.features, instruction_collator(tokenizer)(built.features)


def _labelled(row_labels):
    return [i for i, label in enumerate(row_labels.tolist()) if label != -100]


def _assert_decoder_mask(tokenizer, records, *, plain):
    from bioprobe.instructions.sft import prompt_text

    features, batch = _batch(tokenizer, CANONICAL, seq2seq=False, plain=plain)
    eos = tokenizer.eos_token_id
    assert batch["input_ids"].shape == batch["labels"].shape
    for row, record in enumerate(CANONICAL):
        prompt = tokenizer(prompt_text(record, tokenizer, plain), add_special_tokens=False)
        prompt = prompt["input_ids"]
        response = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [eos]
        n = len(features[row]["input_ids"])
        assert n == len(prompt) + len(response)
        assert batch["input_ids"][row, : len(prompt)].tolist() == prompt
        # labelled: exactly the response and its eos (eos is also the pad token here), whose
        # labels are the tokens themselves (the model shifts them)
        assert _labelled(batch["labels"][row]) == list(range(len(prompt), n))
        assert batch["labels"][row, len(prompt) : n].tolist() == response
        assert batch["input_ids"][row, len(prompt) : n].tolist() == response
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (
            batch["input_ids"].shape[1] - n
        )
    assert len({len(f["input_ids"]) for f in features}) > 1  # padding was exercised


def test_decoder_without_chat_template_learns_only_the_response(tiny_llama_dir):
    from bioprobe.instructions.sft import (
        PLAIN_TEMPLATE,
        PLAIN_TEMPLATE_NO_INPUT,
        prompt_text,
        use_chat_template,
    )

    tokenizer = _tokenizer(tiny_llama_dir)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert not use_chat_template(tokenizer, "auto", seq2seq=False)  # the plain template
    with_input, without = CANONICAL[0], CANONICAL[1]
    bos = tokenizer.bos_token
    assert prompt_text(with_input, tokenizer, True) == bos + PLAIN_TEMPLATE.format(**with_input)
    assert prompt_text(without, tokenizer, True) == bos + PLAIN_TEMPLATE_NO_INPUT.format(**without)
    _assert_decoder_mask(tokenizer, CANONICAL, plain=True)


def test_decoder_with_a_chat_template_learns_only_the_response(tiny_gpt2_dir):
    from bioprobe.instructions.sft import prompt_text, use_chat_template

    tokenizer = _tokenizer(tiny_gpt2_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    assert use_chat_template(tokenizer, "auto", seq2seq=False)
    record = CANONICAL[0]
    expected = f"<|user|>{record['instruction']}\n\n{record['input']}\n<|assistant|>"
    assert prompt_text(record, tokenizer, False) == expected
    _assert_decoder_mask(tokenizer, CANONICAL, plain=False)
    with pytest.raises(ConfigError, match="chat_template"):
        use_chat_template(_tokenizer(tiny_gpt2_dir), "always", seq2seq=False)


def test_t5_reads_the_prompt_in_its_encoder_and_learns_the_response(tiny_t5_dir):
    from bioprobe.instructions.sft import (
        PLAIN_TEMPLATE,
        PLAIN_TEMPLATE_NO_INPUT,
        prompt_text,
        use_chat_template,
    )

    tokenizer = _tokenizer(tiny_t5_dir)
    assert not use_chat_template(tokenizer, "auto", seq2seq=True)
    eos = tokenizer.eos_token_id
    features, batch = _batch(tokenizer, CANONICAL, seq2seq=True, plain=True)
    assert prompt_text(CANONICAL[0], tokenizer, True) == PLAIN_TEMPLATE.format(**CANONICAL[0]) + (
        tokenizer.eos_token
    )
    for row, record in enumerate(CANONICAL):
        # the encoder's input: the plain prompt as the tokenizer encodes it, </s> at its end
        template = PLAIN_TEMPLATE if record["input"] else PLAIN_TEMPLATE_NO_INPUT
        encoded = tokenizer(template.format(**record))["input_ids"]
        assert encoded[-1] == eos
        n = len(features[row]["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == encoded
        response = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [eos]
        labels = batch["labels"][row].tolist()
        assert labels == response + [-100] * (len(labels) - len(response))
    assert batch["labels"].shape[1] < batch["input_ids"].shape[1]  # labels are not the prompt


def test_long_prompts_are_cut_or_left_out(tiny_llama_dir):
    from bioprobe.instructions.sft import build_instruction_features, prompt_text, use_chat_template

    tokenizer = _tokenizer(tiny_llama_dir)
    use_chat_template(tokenizer, "auto", seq2seq=False)
    text = prompt_text(CANONICAL[0], tokenizer, True)
    limit = len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2  # 2 response tokens
    long = {"id": "x", "instruction": "Name it. " * 40, "input": "", "output": "aspirin"}
    built = build_instruction_features(
        [CANONICAL[0], long], tokenizer, seq2seq=False, plain=True, max_length=limit
    )
    assert built.stats() == {"examples": 1, "truncated": 1, "dropped": 1}
    assert len(built.features[0]["input_ids"]) == limit
    assert len(_labelled(torch.tensor(built.features[0]["labels"]))) == 2
    with pytest.raises(ConfigError, match=r"training\.max_length"):
        build_instruction_features([long], tokenizer, seq2seq=False, plain=True, max_length=limit)


# --- which models and methods ------------------------------------------------------------------


def test_encoders_and_untrained_kinds_are_refused(tmp_path, tiny_llama_dir):
    from bioprobe.instructions.sft import instruction_tune, lm_objective
    from bioprobe.models import resolve_model
    from bioprobe.settings import TrainingSettings

    assert lm_objective({"model_type": "llama"}) == "causal-lm"
    assert lm_objective({"model_type": "t5"}) == "seq2seq-lm"
    with pytest.raises(ConfigError, match="'bert' is an encoder") as info:
        lm_objective({"model_type": "bert", "architectures": ["BertForMaskedLM"]}, "models.b")
    assert info.value.key == "models.b"
    spec = resolve_model("m", {"source": str(tiny_llama_dir)})
    common = {"spec": spec, "location": tiny_llama_dir, "training": TrainingSettings(),
              "out_dir": tmp_path / "out", "checkpoint_dir": tmp_path / "ck",
              "seed": 0}  # fmt: skip
    with pytest.raises(ConfigError, match="trains with full, lora, qlora, not prompt-tuning"):
        instruction_tune(CANONICAL, method={"kind": "prompt-tuning"}, **common)
    if not torch.cuda.is_available():  # qlora goes through its plug-in's machine check
        with pytest.raises(ConfigError, match="CUDA"):
            instruction_tune(CANONICAL, method={"kind": "qlora"}, method_id="q", **common)
    assert not (tmp_path / "out").exists()


# --- training ----------------------------------------------------------------------------------

#: short records the tiny models learn within a few steps
TRAIN = [
    {"id": f"t{i}", "instruction": "Name the drug.", "input": f"{drug} helps {who}.",
     "output": drug}
    for i, (drug, who) in enumerate(
        [("aspirin", "patients"), ("insulin", "cells"), ("warfarin", "women"),
         ("cisplatin", "children"), ("tamoxifen", "patients"), ("metformin", "women"),
         ("aspirin", "cells"), ("insulin", "children")]
    )
]  # fmt: skip


def _training(**changes):
    from bioprobe.settings import TrainingSettings

    settings = {"epochs": 6, "batch_size": 4, "max_length": 128, "warmup_ratio": 0.0,
                "logging_steps": 1, "lr_scheduler": "constant"}  # fmt: skip
    return TrainingSettings(**{**settings, **changes})


def _response_loss(model, tokenizer, seq2seq):
    """The mean loss over the response tokens of TRAIN, prompts as training saw them."""
    from bioprobe.instructions.sft import use_chat_template

    use_chat_template(tokenizer, "auto", seq2seq)
    _, batch = _batch(tokenizer, TRAIN, seq2seq=seq2seq, plain=True)
    with torch.no_grad():
        return model.eval()(**batch).loss.item()


def _tune(tmp_path, model_dir, method, lr=1e-2, **kwargs):
    from bioprobe import methods
    from bioprobe.instructions.sft import instruction_tune
    from bioprobe.models import resolve_model

    spec = resolve_model("base", {"source": str(model_dir)})
    method = {**methods.get(method).defaults(), "learning_rate": lr}
    out = tmp_path / "tuned"
    metrics = instruction_tune(
        TRAIN, spec=spec, location=model_dir, method=method, training=_training(**kwargs),
        out_dir=out, checkpoint_dir=tmp_path / "checkpoints", seed=0,
    )  # fmt: skip
    return spec, out, metrics


@pytest.mark.parametrize(
    ("fixture", "seq2seq", "probe"),
    [
        ("tiny_llama_dir", False, "model.layers.0.self_attn.q_proj.weight"),
        ("tiny_t5_dir", True, "encoder.block.0.layer.0.SelfAttention.q.weight"),
    ],
)
def test_lora_instruction_tuning_saves_a_merged_pretrained_checkpoint(
    request, tmp_path, caplog, one_torch_thread, fixture, seq2seq, probe
):
    from bioprobe.instructions.sft import INFO_FILE, _prompt_ids, prompt_text
    from bioprobe.models import load_language_model, load_model_for_task, resolve_model
    from bioprobe.prompting.prompts import PromptFormat
    from bioprobe.prompting.run import Encoder

    base_dir = request.getfixturevalue(fixture)
    caplog.set_level(logging.INFO, logger="bioprobe.train")
    spec, out, metrics = _tune(tmp_path, base_dir, "lora")

    assert metrics["objective"] == ("seq2seq-lm" if seq2seq else "causal-lm")
    assert metrics["global_steps"] == 12 and metrics["parameters_trainable"] > 0
    assert any("ETA" in r.getMessage() for r in caplog.records)  # progress lines
    assert not (tmp_path / "checkpoints").exists()
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json", INFO_FILE} <= files
    assert not files & {"adapter_config.json", "adapter_model.safetensors", "method.json"}
    assert not [f for f in files if f.endswith((".bin", ".pt"))]
    architecture = json.loads((out / "config.json").read_text())["architectures"]
    assert architecture == ["T5ForConditionalGeneration" if seq2seq else "LlamaForCausalLM"]

    # loads as a pretrained model: for a task (a fresh head) and as a language model
    tuned_spec = resolve_model("tuned", {"source": str(out)})
    ner = load_model_for_task(out, "ner", ["O", "B-Chemical", "I-Chemical"], spec=tuned_spec)
    assert ner.config.num_labels == 3
    tuned = load_language_model(out, spec=tuned_spec)
    base = load_language_model(base_dir, spec=spec)
    tuned_weights, base_weights = dict(tuned.named_parameters()), dict(base.named_parameters())
    assert tuned_weights.keys() == base_weights.keys()
    assert not torch.allclose(tuned_weights[probe], base_weights[probe])  # the adapters merged
    embeddings = "shared.weight" if seq2seq else "model.embed_tokens.weight"
    assert torch.equal(tuned_weights[embeddings], base_weights[embeddings])  # LoRA left these
    # the training lowered the loss on the responses
    tokenizer = _tokenizer(base_dir)
    before = _response_loss(base, tokenizer, seq2seq)
    after = _response_loss(tuned, _tokenizer(base_dir), seq2seq)
    assert after < before - 0.2, (before, after)

    # the saved tokenizer's chat template asks prompting in the format training used
    saved = _tokenizer(out)
    assert saved.chat_template
    record = {"instruction": "Name the drug.", "input": "", "output": ""}
    encoder = Encoder(saved, tuned.config, PromptFormat(template="", instruction="", chat=True))
    assert encoder.prompt(record["instruction"]) == _prompt_ids(
        prompt_text(record, saved, True), saved, seq2seq
    )


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch, one_torch_thread,
                                                        tiny_llama_dir):  # fmt: skip
    from bioprobe.instructions import sft

    def killed(*args, **kwargs):
        raise RuntimeError("killed while saving")

    with monkeypatch.context() as patch:
        patch.setattr(sft, "_save", killed)
        with pytest.raises(RuntimeError, match="killed"):
            _tune(tmp_path, tiny_llama_dir, "lora", epochs=2)
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    _, out, metrics = _tune(tmp_path, tiny_llama_dir, "lora", epochs=2)
    assert metrics["resumed_from"] == "checkpoint-4" and metrics["global_steps"] == 4
    assert (out / "model.safetensors").is_file()


def test_full_instruction_tuning_trains_every_weight(tmp_path, one_torch_thread, tiny_gpt2_dir):
    from bioprobe.models import load_language_model, resolve_model

    spec, out, metrics = _tune(tmp_path, tiny_gpt2_dir, "full", lr=1e-3, epochs=1)
    assert metrics["parameters_trainable"] == metrics["parameters_total"]
    tuned = dict(load_language_model(out, spec=resolve_model("t", {"source": str(out)}))
                 .named_parameters())  # fmt: skip
    base = dict(load_language_model(tiny_gpt2_dir, spec=spec).named_parameters())
    assert not torch.allclose(tuned["transformer.wte.weight"], base["transformer.wte.weight"])
    assert tuned["transformer.wte.weight"].dtype == torch.float32  # the checkpoint's dtype
