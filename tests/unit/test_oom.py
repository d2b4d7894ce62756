"""Out of memory: smaller batches on a retry with the effective batch size kept, and one error
naming the config keys to change when fine-tuning or a dump runs out of memory."""

from __future__ import annotations

import pytest
import torch
import transformers

from bioprobe.analysis.extract import DumpSettings, dump_variant
from bioprobe.models import resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.pipeline.oom import (
    OutOfMemory,
    batch_for_attempt,
    cpu_micro_batches,
    is_out_of_memory,
    resume_key,
    split_factor,
    training_for_attempt,
)
from bioprobe.settings import TrainingSettings
from bioprobe.training.finetune import finetune

TRAINING = {"batch_size": 16, "gradient_accumulation": 1, "eval_batch_size": 64}


@pytest.mark.parametrize(
    ("batch", "accumulation", "attempt", "expected"),
    [
        (16, 1, 1, (16, 1)),  # the first attempt runs as configured
        (16, 1, 2, (8, 2)),  # each retry halves the batch and doubles accumulation
        (16, 1, 3, (4, 4)),
        (16, 2, 3, (4, 8)),  # configured accumulation is multiplied, not replaced
        (16, 1, 6, (1, 16)),  # never below one example
        (12, 1, 4, (1, 12)),  # 12 has no divisor 8: the next divisor up keeps 12 exact
        (6, 1, 2, (3, 2)),
        (5, 1, 2, (1, 5)),  # an odd batch goes straight to 1 x 5
        (1, 4, 3, (1, 4)),  # nothing left to split
    ],
)
def test_a_retry_splits_batches_and_keeps_the_effective_batch_size(
    batch, accumulation, attempt, expected
):
    training = TrainingSettings(
        batch_size=batch, gradient_accumulation=accumulation, eval_batch_size=64
    )
    out = training_for_attempt(training, attempt)
    assert (out["batch_size"], out["gradient_accumulation"]) == expected
    assert out["batch_size"] * out["gradient_accumulation"] == batch * accumulation
    assert out["eval_batch_size"] == max(1, 64 // 2 ** (attempt - 1))
    # a retry resumes the killed attempt's checkpoints: the fingerprint ignores the split
    assert resume_key(out) == resume_key(training)


def test_split_factor_always_divides_and_dump_batches_halve():
    for batch in range(1, 40):
        for attempt in range(1, 8):
            factor = split_factor(batch, attempt)
            assert batch % factor == 0 and factor >= min(batch, 2 ** (attempt - 1))
    assert [batch_for_attempt(32, a) for a in (1, 2, 3, 7)] == [32, 16, 8, 1]
    with pytest.raises(ValueError):
        split_factor(16, 0)


@pytest.mark.parametrize(
    ("error", "is_oom"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"), True),
        (MemoryError(), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),  # only the allocators' error types
    ],
)
def test_which_errors_are_out_of_memory(error, is_oom):
    assert is_out_of_memory(error) is is_oom


def _oom_forward(message: str, exc_type=RuntimeError):
    # named inputs: the Trainer keeps only the dataset columns that forward() accepts
    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        raise exc_type(message)

    return forward


def _finetune(ner_data, model_dir, tmp_path, attempt=1):
    training = {
        **TRAINING,
        "epochs": 1,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.0,
        "lr_scheduler": "linear",
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "max_length": 32,
        "pair_truncation": "longest_first",
        "group_by_length": True,
        "select_best": False,
        "save_steps": None,
        "precision": "fp32",
        "logging_steps": 1,
    }
    spec = resolve_model("tiny-bert", {"source": str(model_dir)})
    return finetune(
        job_at(ner_data / "task", spec, 1, attempt=attempt),
        subset_file=ner_data / "subsets.json",
        size=100,
        training=TrainingSettings.from_config(training),
        out_dir=tmp_path / "model",
        checkpoint_dir=tmp_path / "checkpoints",
    )


@pytest.mark.parametrize(
    ("exc_type", "message"),
    [
        (torch.OutOfMemoryError, "CUDA out of memory. Tried to allocate 20.00 GiB"),
        (
            RuntimeError,
            "[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: not enough memory",
        ),
    ],
)
def test_finetune_out_of_memory_names_the_keys_to_change(
    exc_type, message, ner_data, tiny_bert_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        transformers.BertForTokenClassification, "forward", _oom_forward(message, exc_type)
    )
    with pytest.raises(OutOfMemory) as info:
        _finetune(ner_data, tiny_bert_dir, tmp_path, attempt=2)
    text = str(info.value)
    assert "out of memory while fine-tuning" in text
    # attempt 2 really trained with the split batch (the values in force are reported)
    assert "attempt 2: batch_size=8, gradient_accumulation=2, eval_batch_size=32" in text
    for config_key in ("'training.batch_size'", "'training.gradient_accumulation'", "--retries"):
        assert config_key in text
    assert "effective batch size stays 16" in text and message.split(":")[0] in text
    assert not (tmp_path / "model").exists()


def test_other_errors_are_not_dressed_up_as_out_of_memory(
    ner_data, tiny_bert_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        transformers.BertForTokenClassification, "forward", _oom_forward("shape mismatch")
    )
    with pytest.raises(RuntimeError, match="shape mismatch") as info:
        _finetune(ner_data, tiny_bert_dir, tmp_path)
    assert not isinstance(info.value, OutOfMemory)


def test_dump_out_of_memory_names_the_key_and_a_retry_halves_the_batch(
    ner_data, tiny_bert_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        transformers.BertForTokenClassification,
        "forward",
        _oom_forward("CUDA out of memory", torch.OutOfMemoryError),
    )
    with pytest.raises(OutOfMemory) as info:
        dump_variant(
            job_at(
                ner_data / "task",
                resolve_model("tiny-bert", {"source": str(tiny_bert_dir)}),
                1,
                attempt=3,
            ),
            variant="pretrained",
            settings=DumpSettings(batch_size=32),
            out_dir=tmp_path / "dump",
        )
    text = str(info.value)
    assert "out of memory while dumping" in text and "attempt 3: batch_size=8" in text
    assert "'extract.batch_size'" in text and "--retries" in text
    assert not (tmp_path / "dump").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("batch", "accumulation", "longest", "expected"),
    [
        (16, 1, 60, (16, 1)),  # short sentences keep their batches
        (16, 1, 512, (2, 8)),  # 2 x 512^2 fits the budget, 4 x 512^2 does not
        (16, 2, 256, (8, 4)),
        (12, 1, 512, (2, 6)),  # a divisor of the batch, so the effective batch is exact
        (16, 1, 2048, (1, 16)),  # even one sequence is over budget: one at a time
    ],
)
def test_cpu_micro_batches_keep_the_effective_batch(batch, accumulation, longest, expected):
    training = TrainingSettings(batch_size=batch, gradient_accumulation=accumulation, epochs=3)
    out = cpu_micro_batches(training, longest)
    assert (out["batch_size"], out["gradient_accumulation"]) == expected
    assert out["batch_size"] * out["gradient_accumulation"] == batch * accumulation
    assert out["epochs"] == 3 and training["batch_size"] == batch  # a copy; the rest unchanged
