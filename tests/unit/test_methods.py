"""Fine-tuning methods: config, peft configs, QLoRA's config and machine check, saving and
loading adapters, and the virtual tokens of prompt methods."""

import pytest
import torch

from bioprobe.analysis.extract import real_tokens_only
from bioprobe.config import validate_config
from bioprobe.errors import ConfigError
from bioprobe.methods import (
    PromptLabelCollator,
    check_virtual_tokens_fit,
    effective_training,
    load_for_training,
    load_trained,
    lora_targets,
    peft_config,
    quantization_config,
    save_method,
    unsupported_methods,
)
from bioprobe.models import load_tokenizer_for, resolve_model
from bioprobe.settings import TrainingSettings

from .test_config import minimal

NER_LABELS = ["O", "B-Disease", "I-Disease"]
PAIR_LABELS = ["entailment", "neutral", "contradiction"]


def methods(**entries):
    return validate_config(minimal(methods=entries))["methods"]


# --- config ----------------------------------------------------------------------------------


def test_an_id_that_is_a_kind_needs_no_kind_and_gets_the_schema_defaults():
    got = methods(full={}, lora={"r": 4}, **{"prompt-tuning": None, "lora-big": {"kind": "lora"}})
    assert got["full"] == {"kind": "full", "learning_rate": None}
    assert got["lora"]["kind"] == "lora" and got["lora"]["r"] == 4
    assert got["lora"]["target_modules"] is None and got["lora"]["learning_rate"] > 2e-5
    assert got["lora-big"]["r"] == 16
    assert got["prompt-tuning"]["num_virtual_tokens"] == 20


@pytest.mark.parametrize(
    ("entries", "key", "words"),
    [
        ({"lorra": {}}, "methods.lorra", "did you mean 'lora'"),
        ({"lora": {"rank": 4}}, "methods.lora.rank", "unknown key"),
        ({"lora": {"kind": "p-tuning", "r": 4}}, "methods.lora.r", "encoder_type"),
        ({"x": {"kind": "adapter"}}, "methods.x.kind", "is not one of"),
        ({"pretrained": {"kind": "full"}}, "methods.pretrained", "reserved"),
        ({"lora": {"target_modules": []}}, "methods.lora.target_modules", ""),
        (
            {"prompt-tuning": {"num_virtual_tokens": 0}},
            "methods.prompt-tuning.num_virtual_tokens",
            "",
        ),
    ],
)
def test_a_method_mistake_is_one_error_naming_the_key(entries, key, words):
    with pytest.raises(ConfigError) as err:
        methods(**entries)
    assert err.value.key == key
    assert words in str(err.value)


def test_a_method_learning_rate_overrides_the_training_one():
    training = TrainingSettings(learning_rate=1e-4, epochs=1)
    assert effective_training(training, {"kind": "lora", "learning_rate": 1e-3}) == (
        TrainingSettings(learning_rate=1e-3, epochs=1)
    )
    assert effective_training(training, {"kind": "full", "learning_rate": None}) == training


def test_lora_targets_per_family_and_an_unknown_family_names_the_key():
    lora = methods(lora={})["lora"]
    assert lora_targets(lora, "bert", "methods.lora") == ["query", "key", "value", "dense"]
    assert lora_targets(lora, "gpt2", "methods.lora") == ["c_attn", "c_proj", "c_fc"]
    assert "q_proj" in lora_targets(lora, "biogpt", "methods.lora")
    assert "o_proj" in lora_targets(lora, "llama", "methods.lora")
    assert {"q", "k", "v", "o", "wo"} <= set(lora_targets(lora, "t5", "methods.lora"))
    assert lora_targets({**lora, "target_modules": ["query"]}, "bert", "k") == ["query"]
    with pytest.raises(ConfigError, match=r"methods\.lora\.target_modules"):
        lora_targets(lora, "xlnet", "methods.lora")


# --- qlora ------------------------------------------------------------------------------------


def test_qlora_needs_cuda_and_bitsandbytes():
    qlora = methods(full={}, qlora={})
    errors = unsupported_methods(qlora, cuda=False, bitsandbytes=False)
    assert [e.key for e in errors] == ["methods.qlora"]
    message = str(errors[0])
    assert "CUDA" in message and "bitsandbytes" in message and "'qlora'" in message
    assert "bitsandbytes is not installed" not in str(
        unsupported_methods(qlora, cuda=False, bitsandbytes=True)[0]
    )
    assert unsupported_methods(qlora, cuda=True, bitsandbytes=True) == []
    assert unsupported_methods(methods(full={}, lora={}), cuda=False, bitsandbytes=False) == []


def test_qlora_quantisation_config_is_4bit_nf4_with_full_precision_heads():
    qlora = methods(qlora={"compute_dtype": "float16"})["qlora"]
    bnb = quantization_config(qlora)
    assert bnb.load_in_4bit and not bnb.load_in_8bit
    assert bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_compute_dtype == torch.float16
    assert {"classifier", "score"} <= set(bnb.llm_int8_skip_modules)


# --- peft models ------------------------------------------------------------------------------


def spec_at(location):
    return resolve_model("m", {"source": str(location)})


def test_peft_configs_train_the_task_head(tiny_bert_dir):
    spec = spec_at(tiny_bert_dir)
    chosen = methods(lora={}, **{"p-tuning": {"num_virtual_tokens": 3}})
    for method_id, method in chosen.items():
        model = load_for_training(
            str(tiny_bert_dir), "ner", NER_LABELS, spec=spec, method=method, max_length=32
        )
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert any("classifier" in n for n in trainable), method_id
        assert not any("word_embeddings" in n for n in trainable), method_id
        assert peft_config(method, "ner", model.get_base_model()).modules_to_save == ["classifier"]


def test_virtual_tokens_must_fit_the_position_embeddings(tiny_bert_dir):
    prompt = methods(**{"prompt-tuning": {"num_virtual_tokens": 20}})["prompt-tuning"]
    model_config = type("Config", (), {"max_position_embeddings": 128})()
    check_virtual_tokens_fit(prompt, model_config, 108, "methods.prompt-tuning")
    with pytest.raises(ConfigError, match=r"methods\.prompt-tuning\.num_virtual_tokens"):
        check_virtual_tokens_fit(prompt, model_config, 109, "methods.prompt-tuning")


def _batch(tokenizer, texts):
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, : len(e)], mask[row, : len(e)] = torch.tensor(e), 1
    return {"input_ids": ids, "attention_mask": mask}


def test_decoder_sequence_head_pools_the_last_real_token_under_prompt_tuning(tiny_gpt2_dir):
    spec = spec_at(tiny_gpt2_dir)
    tokenizer = load_tokenizer_for(spec)
    prompt = methods(**{"prompt-tuning": {"num_virtual_tokens": 3}})["prompt-tuning"]
    model = load_for_training(
        str(tiny_gpt2_dir), "pair", PAIR_LABELS, spec=spec, method=prompt, max_length=32
    ).eval()
    texts = ["Aspirin reduces fever .", "The BRCA1 mutation increases the risk of breast cancer ."]
    with torch.no_grad():
        padded = model(**_batch(tokenizer, texts)).logits
        alone = torch.cat([model(**_batch(tokenizer, [t])).logits for t in texts])
    # without the fix the short example's logits would be read at a pad position
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)


def _perturb(model):
    """Adapters start as a no-op (LoRA B = 0): make the trained state differ from the base."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("method_id", ["lora", "prompt-tuning"])
def test_saved_adapters_load_back_to_the_same_model(tiny_bert_dir, tmp_path, method_id):
    spec = spec_at(tiny_bert_dir)
    tokenizer = load_tokenizer_for(spec)
    method = methods(**{method_id: {"num_virtual_tokens": 3} if method_id != "lora" else {}})[
        method_id
    ]
    model = load_for_training(
        str(tiny_bert_dir), "ner", NER_LABELS, spec=spec, method=method, max_length=32
    )
    _perturb(model)
    model.eval()
    model.save_pretrained(tmp_path)
    save_method(tmp_path, method)
    batch = _batch(tokenizer, ["Aspirin reduces fever .", "Insulin regulates glucose uptake ."])
    loaded, virtual = load_trained(
        str(tmp_path), "ner", NER_LABELS, spec=spec, base_location=str(tiny_bert_dir)
    )
    with torch.no_grad():
        expected, got = model(**batch).logits, loaded(**batch).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    if method_id == "lora":  # merged: a plain transformers model for the dumps
        assert virtual == 0 and not hasattr(loaded, "peft_config")
    else:
        assert virtual == 3 and got.shape[1] == batch["input_ids"].shape[1] + 3
    assert not (tmp_path / "model.safetensors").exists()


def test_adapters_need_their_base(tiny_bert_dir, tmp_path):
    save_method(tmp_path, methods(lora={})["lora"])
    with pytest.raises(Exception, match="base model"):
        load_trained(str(tmp_path), "ner", NER_LABELS, spec=spec_at(tiny_bert_dir))


# --- virtual tokens ---------------------------------------------------------------------------


def test_real_tokens_only_cuts_virtual_positions_and_renormalises_attention_rows():
    hidden = torch.arange(2 * 1 * 4 * 1, dtype=torch.float32).reshape(2, 1, 4, 1)
    # one head, 2 virtual + 2 real tokens; the real tokens' rows give the prompt 0.5 and 0.2
    attn = torch.tensor(
        [
            [0.25, 0.25, 0.5, 0.0],
            [0.1, 0.1, 0.2, 0.6],
            [0.25, 0.25, 0.25, 0.25],
            [0.1, 0.1, 0.6, 0.2],
        ]
    ).reshape(1, 1, 4, 4)
    h, (a,) = real_tokens_only(hidden, (attn,), 2)
    assert h.squeeze().tolist() == [[2.0, 3.0], [6.0, 7.0]]
    torch.testing.assert_close(a.squeeze(), torch.tensor([[0.5, 0.5], [0.75, 0.25]]))
    same_h, same_a = real_tokens_only(hidden, (attn,), 0)
    assert same_h is hidden and same_a[0] is attn


def test_prompt_label_collator_masks_the_virtual_positions():
    def collate(features):
        return {"labels": torch.tensor([f["labels"] for f in features])}

    batch = PromptLabelCollator(collate, 2)([{"labels": [1, 2]}, {"labels": [0, -100]}])
    assert batch["labels"].tolist() == [[-100, -100, 1, 2], [-100, -100, 0, -100]]


# --- the instruction kind ----------------------------------------------------------------------


def test_an_instruction_method_tunes_with_its_tuning_kind():
    from bioprobe import methods
    from bioprobe.config import validate_config

    entry = validate_config(_instruction_config({"kind": "instruction", "r": 4}))["methods"]["i"]
    kind = methods.get("instruction")
    assert kind.tunes_instructions and kind.trains and not kind.is_adapter
    assert kind.tuning(entry) == {**methods.get("lora").defaults(), "r": 4}
    full = kind.tuning({**entry, "tuning": "full"})
    assert full == {"kind": "full", "learning_rate": None}  # LoRA keys do not reach full
    qlora = kind.tuning({**entry, "tuning": "qlora", "quant_type": "fp4"})
    assert qlora["kind"] == "qlora" and qlora["quant_type"] == "fp4" and qlora["r"] == 4
    errors = methods.unsupported_methods(
        {"i": {**entry, "tuning": "qlora"}}, cuda=False, bitsandbytes=True
    )
    assert [e.key for e in errors] == ["methods.i"] and "CUDA" in str(errors[0])
    assert not methods.unsupported_methods({"i": entry}, cuda=False, bitsandbytes=False)


def test_an_encoder_is_refused_instruction_tuning_naming_model_and_method():
    from bioprobe import methods

    entry = {"kind": "instruction", "tuning": "lora"}
    bert = {"model_type": "bert", "architectures": ["BertForMaskedLM"]}
    refused = r"instruct cannot run models\.b: .*'bert' is an encoder"
    with pytest.raises(ConfigError, match=refused) as e:
        methods.check_model_supported({"instruct": entry}, bert, "ner", "models.b")
    assert e.value.key == "methods.instruct"
    methods.check_model_supported({"instruct": entry}, {"model_type": "t5"}, "ner", "models.t")


def _instruction_config(method, **instructions):
    return {
        "tasks": {"t": {"type": "ner", "format": "bio-tsv", "path": "d",
                        "splits": {"train": "a", "validation": "b", "test": "c"}}},
        "models": {"m": {"source": "x"}},
        "methods": {"i": method},
        "instructions": instructions,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "error"),
    [("demo", None), ("bio-nlp-umass/bioinstruct", None), ("./missing.json", "does not exist"),
     ("/no/such/dir", "does not exist")],
)  # fmt: skip
def test_the_instruction_source_is_the_demo_a_path_or_a_hub_id(source, error):
    from bioprobe.config import validate_config

    config = _instruction_config({"kind": "instruction"}, source=source)
    if error is None:
        assert validate_config(config)["instructions"]["source"] == source
        return
    with pytest.raises(ConfigError, match=error) as info:
        validate_config(config)
    assert info.value.key == "instructions.source"
    # without an instruction method the block is not read
    validate_config({**config, "methods": {"full": {}}})


def test_instruction_tuning_in_several_processes_is_refused_naming_the_key():
    config = _instruction_config({"kind": "instruction"})
    config["models"]["m"]["training"] = {"processes": 2}
    with pytest.raises(ConfigError, match="instruction tuning of 'm' would run in several") as e:
        validate_config(config)
    assert e.value.key == "models.m.training.processes"
    config["models"]["m"]["training"] = {}
    config["instructions"]["training"] = {"processes": 4}
    with pytest.raises(ConfigError) as e:
        validate_config(config)
    assert e.value.key == "instructions.training.processes"
