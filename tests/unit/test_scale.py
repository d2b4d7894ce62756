"""Scale: the dtype weights load in, memory planning, gradient checkpointing."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from bioprobe.config import validate_config
from bioprobe.errors import ConfigError
from bioprobe.methods import load_for_training
from bioprobe.models import load_model_for_task, random_init_like, resolve_model, weights_dtype
from bioprobe.pipeline.jobs import job_at
from bioprobe.settings import TrainingSettings
from bioprobe.training.finetune import finetune
from bioprobe.training.memory import (
    GIB,
    activation_bytes,
    advice,
    fits,
    parameter_bytes,
    plan_training_memory,
)

from .test_prepare import NER_SPLITS

LABELS = ["O", "B-Disease", "I-Disease"]


def _spec(model_dir, **entry):
    return resolve_model("tiny", {"source": str(model_dir), **entry})


# --- the dtype weights load in ------------------------------------------------------------


def test_auto_loads_training_weights_in_float32_and_frozen_ones_in_the_half_type(tiny_bert_dir):
    spec = _spec(tiny_bert_dir)
    assert weights_dtype(spec) is torch.float32
    assert weights_dtype(spec, "bfloat16") is torch.bfloat16
    assert weights_dtype(spec, "float16") is torch.float16
    pinned = _spec(tiny_bert_dir, dtype="float32")
    assert weights_dtype(pinned, "bfloat16") is torch.float32


def test_a_bf16_model_holds_no_float32_weights(tiny_bert_dir):
    spec = _spec(tiny_bert_dir, dtype="bfloat16")
    model = load_model_for_task(None, "ner", LABELS, spec=spec)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    control = random_init_like(None, "ner", LABELS, spec=spec, seed=1)
    assert {p.dtype for p in control.parameters()} == {torch.bfloat16}
    # the CPU default stays float32 (no half type on a CPU)
    plain = load_model_for_task(None, "ner", LABELS, spec=_spec(tiny_bert_dir))
    assert {p.dtype for p in plain.parameters()} == {torch.float32}


def test_an_adapter_trains_float32_parameters_on_a_half_base(tiny_bert_dir):
    spec = _spec(tiny_bert_dir)
    method = {"kind": "lora", "r": 2, "alpha": 4, "dropout": 0.0, "bias": "none"}
    method["target_modules"] = None
    model = load_for_training(
        str(tiny_bert_dir), "ner", LABELS, spec=spec, method=method, max_length=32,
        half="bfloat16",
    )  # fmt: skip
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16}
    assert trained == {torch.float32}, "the head copy and the adapters are master weights"
    full = load_for_training(
        str(tiny_bert_dir), "ner", LABELS, spec=spec, method={"kind": "full"}, max_length=32,
        half="bfloat16",
    )  # fmt: skip
    assert {p.dtype for p in full.parameters()} == {torch.float32}, "full: float32 masters"


def test_an_unknown_dtype_names_its_key(tiny_bert_dir):
    with pytest.raises(ConfigError, match=r"models\.tiny\.dtype"):
        _spec(tiny_bert_dir, dtype="float8")
    with pytest.raises(ConfigError, match="dtype"):
        task = {"type": "ner", "format": "bio-tsv", "path": "x", "splits": NER_SPLITS}
        validate_config({"tasks": {"t": task}, "models": {"m": {"source": "x", "dtype": "int8"}}})


# --- memory planning ----------------------------------------------------------------------


def _meta_llama(layers=32, hidden=4096, heads=32, kv=8, inter=14336, vocab=128256):
    """LLaMA-3-8B's shape on the meta device: parameters without memory."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv, intermediate_size=inter, vocab_size=vocab, num_labels=3,
    )  # fmt: skip
    with torch.device("meta"):
        return LlamaForSequenceClassification(config)


def test_the_plan_counts_weights_gradients_and_adamw_states_exactly(tiny_bert_dir):
    model = load_model_for_task(None, "ner", LABELS, spec=_spec(tiny_bert_dir))
    n = sum(p.numel() for p in model.parameters())
    plan = plan_training_memory(model, batch_size=4, seq_len=16)
    assert (plan.weights, plan.gradients, plan.optimizer) == (4 * n, 4 * n, 8 * n)
    assert plan.overhead == 0  # no CUDA context on a CPU
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = plan_training_memory(model, batch_size=4, seq_len=16)
    assert (frozen.gradients, frozen.optimizer) == (0, 0)
    assert parameter_bytes(model) == (4 * n, 0, 0, n)


def test_activations_follow_korthikanti_and_shrink_with_checkpointing():
    config = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4}
    s, b, h, a, layers = 32, 8, 64, 4, 4
    one = s * b * h * (34 + 5 * a * s / h)
    assert activation_bytes(
        config, batch_size=b, seq_len=s, half=True, gradient_checkpointing=False
    ) == int(layers * one)
    fp32 = activation_bytes(
        config, batch_size=b, seq_len=s, half=False, gradient_checkpointing=False
    )
    assert fp32 == int(2 * layers * one)
    kept = activation_bytes(config, batch_size=b, seq_len=s, half=True, gradient_checkpointing=True)
    assert kept == int(layers * 2 * s * b * h + one) and kept < layers * one / 3


def test_an_8b_model_needs_more_than_a_gpu_for_full_fine_tuning_and_fits_with_adapters():
    model = _meta_llama()
    n = sum(p.numel() for p in model.parameters())
    assert 7.4e9 < n < 7.6e9  # LLaMA-3-8B's backbone with a 3-class head (no LM head)
    h100 = 80 * GIB
    plan = plan_training_memory(model, batch_size=8, seq_len=256, half=True, cuda=True)
    # the "16 bytes a parameter before activations" of plain AdamW in float32, and autocast's
    # bf16 copy of the weights during the forward pass
    assert plan.weights + plan.gradients + plan.optimizer == 16 * n and plan.casts == 2 * n
    assert not fits(plan, h100)
    todo = advice(plan, h100, batch_size=8, gradient_checkpointing=False, adapter=False,
                  optimizer="adamw_torch_fused")  # fmt: skip
    assert len(todo) == 1 and "lora" in todo[0] and "processes" in todo[0]
    # sharded over 4 GPUs: 4 bytes a parameter per GPU, plus activations
    sharded = plan_training_memory(model, batch_size=8, seq_len=256, half=True, shards=4, cuda=True)
    assert sharded.weights + sharded.gradients + sharded.optimizer == 4 * n
    # LoRA-like: a frozen bf16 base, a few trainable float32 parameters
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(torch.bfloat16)
    lora = plan_training_memory(model, batch_size=8, seq_len=256, half=True, cuda=True)
    assert lora.weights == 2 * n and lora.optimizer == lora.casts == 0
    assert fits(lora, h100)


def test_advice_names_checkpointing_then_the_batch_when_activations_do_not_fit():
    model = _meta_llama(layers=4, hidden=1024, heads=8, kv=8, inter=4096, vocab=32000)
    plan = plan_training_memory(model, batch_size=64, seq_len=2048, half=True, cuda=True)
    small = plan.total - plan.activations + plan.activations // 4
    assert not fits(plan, small)
    todo = advice(plan, small, batch_size=64, gradient_checkpointing=False, adapter=True,
                  optimizer="adamw_torch_fused")  # fmt: skip
    assert "training.gradient_checkpointing" in todo[0]
    assert "training.batch_size" in todo[1] and "gradient_accumulation" in todo[1]
    roomy = plan.total * 2
    assert fits(plan, roomy)
    assert not advice(plan, roomy, batch_size=64, gradient_checkpointing=False, adapter=True,
                      optimizer="adamw_torch_fused")  # fmt: skip


# --- gradient checkpointing and the logged plan ---------------------------------------------


def _train(ner_data, model_dir, out, checkpointing: bool) -> list[float]:
    training = TrainingSettings.from_config(
        {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "max_length": 32,
         "select_best": False, "precision": "fp32", "logging_steps": 1,
         "gradient_checkpointing": checkpointing}
    )  # fmt: skip
    finetune(
        job_at(ner_data / "task", _spec(model_dir), 1),
        subset_file=ner_data / "subsets.json",
        size=100,
        training=training,
        out_dir=out,
        checkpoint_dir=out.parent / f"{out.name}-ckpt",
    )
    state = json.loads((out / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def test_gradient_checkpointing_trains_the_same_model(
    ner_data, tiny_bert_dir, tmp_path, caplog, monkeypatch
):
    from transformers.models.bert import modeling_bert

    calls = []
    forward = modeling_bert.BertSelfAttention.forward  # inside a layer (which checkpoints)

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_bert.BertSelfAttention, "forward", counted)
    plain = _train(ner_data, tiny_bert_dir, tmp_path / "plain", checkpointing=False)
    plain_calls, calls[:] = len(calls), []
    with caplog.at_level(logging.INFO, logger="bioprobe.train"):
        kept = _train(ner_data, tiny_bert_dir, tmp_path / "kept", checkpointing=True)
    assert len(plain) == len(kept) == 4  # 8 sentences, batches of 4, 2 epochs
    assert kept == pytest.approx(plain, rel=1e-5, abs=1e-6)  # dropout replayed, same steps
    # each layer's forward ran again in the backward pass: once more per training step
    assert len(calls) == plain_calls + 4 * 2
    plan = [r.getMessage() for r in caplog.records if "estimated peak" in r.getMessage()]
    assert len(plan) == 1 and "weights" in plan[0] and "activations" in plan[0], plan


# --- extract.layers and extract.max_units ---------------------------------------------------


def test_kept_layers_every_kth_with_the_last_or_listed():
    from bioprobe.analysis.extract import kept_layers

    assert kept_layers(None, 4) == [0, 1, 2, 3, 4]
    assert kept_layers(4, 32) == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert kept_layers(3, 8) == [0, 3, 6, 8]  # the last layer always
    assert kept_layers([6, 0, 3], 8) == [0, 3, 6]
    with pytest.raises(ConfigError, match=r"extract\.layers.*layer 9 is past"):
        kept_layers([0, 9], 8)


def _dump(ner_data, model_dir, out, **settings):
    from bioprobe.analysis.extract import DumpSettings, dump_variant

    dump = DumpSettings(batch_size=4, max_length=32, attention_max_examples=2, **settings)
    return dump_variant(
        job_at(ner_data / "task", _spec(model_dir), 1), variant="pretrained", settings=dump,
        out_dir=out,
    )  # fmt: skip


def test_a_dump_of_kept_layers_gives_rows_numbered_as_the_models_layers(
    ner_data, tiny_bert_dir, tmp_path
):
    import numpy as np

    from bioprobe.analysis.stages import probe_variant, similarity_rows
    from bioprobe.settings import CkaSettings, ProbeSettings

    full = _dump(ner_data, tiny_bert_dir, tmp_path / "all")
    kept = _dump(ner_data, tiny_bert_dir, tmp_path / "kept", layers=(0, 2))
    assert full["layers"] == [0, 1, 2] and kept["layers"] == [0, 2]
    a = np.load(tmp_path / "all" / "test.hidden.npy")
    b = np.load(tmp_path / "kept" / "test.hidden.npy")
    assert b.shape == (2, *a.shape[1:])
    np.testing.assert_array_equal(b, a[[0, 2]])  # the same vectors, the others left out
    labels = json.loads((ner_data / "task" / "labels.json").read_text())
    probe = ProbeSettings.from_config({"control": False, "mdl": False, "linear": {"C": 1.0}})
    rows = probe_variant(tmp_path / "kept", {"task_type": "ner", **labels}, probe, seed=1)
    assert {r["layer"] for r in rows} == {0, 2}
    rows = similarity_rows(tmp_path / "kept", tmp_path / "kept", CkaSettings(), "ner")
    assert {r["layer"] for r in rows} == {0, 2}


def test_max_units_keeps_the_same_whole_examples_for_every_variant(
    ner_data, tiny_bert_dir, tmp_path
):
    from bioprobe.analysis.extract import cap_units

    records = [{"id": f"s{i}", "tokens": ["w"] * (1 + i % 5)} for i in range(40)]
    words = lambda r: len(r["tokens"])  # noqa: E731
    kept = cap_units(records, 30, words, "test")
    assert sum(map(words, kept)) <= 30 and sum(map(words, kept)) >= 25
    assert kept == cap_units(records, 30, words, "test")  # fixed seed: the same draw
    assert [r["id"] for r in kept] == sorted((r["id"] for r in kept), key=lambda i: int(i[1:]))
    assert cap_units(records, 30, words, "validation") != kept  # a draw per split
    assert cap_units(records, 10_000, words, "test") is records
    # through dump_variant: fewer units, the same ones in two variants (another seed too)
    meta = _dump(ner_data, tiny_bert_dir, tmp_path / "a", max_units=2)
    assert meta["splits"]["test"]["units"] in (1, 2)  # of 3 words: "no entity", "lithium"
    one = json.loads((tmp_path / "a" / "test.units.json").read_text())
    _dump(ner_data, tiny_bert_dir, tmp_path / "b", max_units=2)
    assert json.loads((tmp_path / "b" / "test.units.json").read_text()) == one


def test_a_float16_dump_refuses_values_it_cannot_hold():
    from bioprobe.analysis.extract import as_dump_dtype

    big = torch.tensor([[1.0, 7.0e4]])  # a large decoder's residual stream can reach this
    with pytest.raises(ConfigError, match=r"extract\.dtype.*float32"):
        as_dump_dtype(big, "float16")
    assert as_dump_dtype(big, "float32")[0, 1] == 7.0e4
    assert as_dump_dtype(torch.tensor([[6.5e4]]), "float16")[0, 0] == 64992.0  # held, rounded
