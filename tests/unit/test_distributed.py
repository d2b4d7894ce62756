"""Several processes per fine-tuning job and the 8-bit optimisers: the config keys (schema,
planning checks naming the key), the Trainer arguments they become, and the launcher's one-line
failure report. The launch itself: tests/workflow/test_distributed.py."""

import pytest

from bioprobe.config import training_config, validate_config
from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.settings import TrainingSettings
from bioprobe.training import distributed, launch

from .test_config import minimal


def config(training=None, model_training=None):
    cfg = minimal(models={"llama": {"source": "meta-llama/Meta-Llama-3-8B"}})
    if training is not None:
        cfg["training"] = training
    if model_training is not None:
        cfg["models"]["llama"]["training"] = model_training
    return validate_config(cfg)


def test_defaults_one_process_ddp_fused_adamw():
    merged = training_config(config(), "ner", "llama")
    assert (merged["processes"], merged["strategy"], merged["optim"]) == (1, "ddp", "adamw")
    # schema and settings class agree on every key
    settings = TrainingSettings.from_config(merged, "training")
    assert (settings.processes, settings.strategy, settings.optim) == (1, "ddp", "adamw")


def test_per_model_processes_and_strategy():
    merged = training_config(
        config(model_training={"processes": 4, "strategy": "fsdp"}), "ner", "llama"
    )
    assert (merged["processes"], merged["strategy"]) == (4, "fsdp")


@pytest.mark.parametrize(
    ("training", "key"),
    [
        ({"strategy": "deepspeed"}, "models.llama.training.strategy"),
        ({"processes": 0}, "models.llama.training.processes"),
        ({"processes": 1.5}, "models.llama.training.processes"),
        ({"optim": "adam8"}, "models.llama.training.optim"),
    ],
)
def test_bad_values_are_one_error_naming_the_key(training, key):
    with pytest.raises(ConfigError) as bad:
        config(model_training=training)
    assert bad.value.key == key
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize("optim", ["adamw_8bit", "paged_adamw_8bit"])
def test_eight_bit_optimiser_needs_cuda_and_bitsandbytes(optim):
    cfg = config(model_training={"optim": optim})
    errors = distributed.unsupported_training(cfg, cuda=False, bitsandbytes=False)
    assert len(errors) == 1
    assert errors[0].key == "models.llama.training.optim"
    message = str(errors[0])
    assert "no CUDA device" in message and "bitsandbytes is not installed" in message
    assert "\n" not in message
    only_bnb = distributed.unsupported_training(cfg, cuda=True, bitsandbytes=False)
    assert "no CUDA" not in str(only_bnb[0])
    assert distributed.unsupported_training(cfg, cuda=True, bitsandbytes=True) == []
    with pytest.raises(ConfigError, match=r"training\.optim"):
        distributed.require_training_supported(cfg, cuda=False, bitsandbytes=True)
    # the plain optimiser never probes the machine
    assert distributed.unsupported_training(config(), cuda=False, bitsandbytes=False) == []


def test_batch_must_split_evenly_over_the_processes():
    bad = config(training={"batch_size": 6}, model_training={"processes": 4})
    with pytest.raises(ConfigError) as uneven:
        distributed.check_processes(bad)
    assert uneven.value.key == "training.batch_size"
    assert "models.llama.training.processes (4)" in str(uneven.value)
    distributed.check_processes(config(training={"batch_size": 8}, model_training={"processes": 4}))


def test_processes_need_as_many_gpus_as_the_run_offers():
    four = config(training={"batch_size": 8}, model_training={"processes": 4})
    with pytest.raises(ConfigError) as short:
        distributed.check_processes(four, gpus=2)
    assert short.value.key == "models.llama.training.processes"
    assert "--resources gpu=2" in str(short.value)
    distributed.check_processes(four, gpus=4)
    distributed.check_processes(four, gpus=None)  # no limit (a CPU run, SLURM): no check
    # under fsdp, a grid of adapters only runs each job in one process
    sharded = config(
        training={"batch_size": 8}, model_training={"processes": 4, "strategy": "fsdp"}
    )
    distributed.check_processes({**sharded, "methods": {"lora": {"kind": "lora"}}}, gpus=1)
    with pytest.raises(ConfigError):
        distributed.check_processes(sharded, gpus=1)  # the default method: full


def test_each_process_takes_its_share_of_the_batch():
    training = TrainingSettings(batch_size=16, gradient_accumulation=2, processes=4)
    share = distributed.per_process(training)
    assert (share.batch_size, share.gradient_accumulation) == (4, 2)
    assert distributed.per_process(TrainingSettings(batch_size=16)).batch_size == 16
    with pytest.raises(ConfigError, match=r"training\.batch_size"):
        distributed.per_process(TrainingSettings(batch_size=6, processes=4))


def test_fsdp_leaves_adapter_methods_to_one_process():
    fsdp = TrainingSettings(batch_size=16, processes=4, strategy="fsdp")
    assert distributed.for_method(fsdp, {"kind": "full"}).processes == 4
    for kind in ("lora", "qlora", "prompt-tuning", "p-tuning"):
        assert distributed.for_method(fsdp, {"kind": kind}).processes == 1
    # with ddp the processes are data parallelism, for every method
    ddp = fsdp.replace(strategy="ddp")
    assert distributed.for_method(ddp, {"kind": "lora"}).processes == 4
    assert distributed.job_processes(4, "fsdp", adapter=True) == 1
    assert distributed.job_processes(4, "fsdp", adapter=False) == 4


def test_launches_only_outside_a_rank(monkeypatch):
    monkeypatch.delenv(distributed.LAUNCH_DIR_ENV, raising=False)
    assert distributed.needs_launch(TrainingSettings(processes=2))
    assert not distributed.needs_launch(TrainingSettings(processes=1))
    monkeypatch.setenv(distributed.LAUNCH_DIR_ENV, "/tmp/x")
    assert not distributed.needs_launch(TrainingSettings(processes=2))


def _tiny(family):
    import transformers

    if family == "bert":
        cfg = transformers.BertConfig(
            vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=16,
        )  # fmt: skip
        return transformers.BertForTokenClassification(cfg)
    cfg = transformers.LlamaConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=16,
    )  # fmt: skip
    return transformers.LlamaForSequenceClassification(cfg)


def test_trainer_arguments_of_each_strategy_and_optimiser():
    bert, llama = _tiny("bert"), _tiny("llama")
    assert distributed.trainer_arguments(TrainingSettings(), bert, cuda=False) == {
        "optim": "adamw_torch_fused"
    }
    ddp = distributed.trainer_arguments(TrainingSettings(processes=2), bert, cuda=False)
    assert ddp == {"optim": "adamw_torch_fused", "ddp_backend": "gloo"}
    nccl = distributed.trainer_arguments(TrainingSettings(processes=2), bert, cuda=True)
    assert nccl["ddp_backend"] == "nccl"
    fsdp = TrainingSettings(processes=2, strategy="fsdp")
    args = distributed.trainer_arguments(fsdp, llama, cuda=True)
    assert args["fsdp"] is True and args["fsdp_config"]["reshard_after_forward"] is True
    # one FSDP unit per transformer block: the classes the model keeps whole
    # (`_no_split_modules`), else the class of its stack of blocks
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert "BertLayer" in distributed.block_classes(bert)
    bert._no_split_modules = None
    assert distributed.block_classes(bert) == ["BertLayer"]
    # accelerate shards on GPUs only: FSDP on a CPU would be DDP in all but name
    assert distributed.trainer_arguments(fsdp, llama, cuda=False) == {
        "optim": "adamw_torch_fused",
        "ddp_backend": "gloo",
    }
    # strategy is ignored with one process
    one = distributed.trainer_arguments(TrainingSettings(strategy="fsdp"), bert, cuda=True)
    assert "fsdp" not in one


def test_eight_bit_optimiser_at_job_time(monkeypatch):
    monkeypatch.setattr(distributed, "_bitsandbytes_installed", lambda: True)
    paged = TrainingSettings(optim="paged_adamw_8bit")
    assert distributed.trainer_arguments(paged, None, cuda=True) == {"optim": "paged_adamw_8bit"}
    assert distributed.trainer_arguments(TrainingSettings(optim="adamw_8bit"), None, cuda=True) == {
        "optim": "adamw_bnb_8bit"
    }
    with pytest.raises(ConfigError, match=r"'training\.optim'.*no CUDA device"):
        distributed.trainer_arguments(paged, None, cuda=False)


def test_the_transformers_optimiser_names_exist():
    from transformers.training_args import OptimizerNames

    assert set(distributed.OPTIMIZERS.values()) <= {o.value for o in OptimizerNames}


def test_a_failed_launch_is_one_line_naming_the_first_failing_rank(tmp_path):
    import os

    (tmp_path / "rank1.error").write_text("ValueError: broken\n")
    (tmp_path / "rank0.error").write_text("RuntimeError: connection closed by peer\n")
    os.utime(tmp_path / "rank1.error", (1, 1))  # rank 1 failed first; rank 0 because it did
    message = launch._failure(tmp_path, 2, 1)
    assert message == (
        f"fine-tuning on 2 processes failed: rank 1: ValueError: broken "
        f"(every rank's log: {tmp_path})"
    )
    for error in tmp_path.glob("*.error"):
        error.unlink()
    killed = launch._failure(tmp_path, 2, -9)
    assert "torchrun exited with code -9" in killed and "\n" not in killed


def test_too_few_gpus_is_one_error(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(BioprobeError, match=r"training\.processes is 4 .* sees 2 GPU"):
        launch.run(None, TrainingSettings(processes=4), checkpoint_dir=tmp_path / "c")
    assert not launch.launch_dir(tmp_path / "c").exists()
