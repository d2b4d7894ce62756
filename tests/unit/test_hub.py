"""Hub downloads (bioprobe.hub) without a network: a fake snapshot function over local
directories, and the real huggingface_hub.snapshot_download falling back to a seeded cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bioprobe.errors import ConfigError, InputError
from bioprobe.hub import (
    dataset_patterns,
    download_dataset,
    download_model,
    is_hub_dataset,
    model_patterns,
)


def _files(root: Path, names: dict[str, bytes]) -> Path:
    for name, data in names.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


class FakeHub:
    """snapshot_download over `root/<repo_id>`: records its calls, returns the repo's folder
    unfiltered (so bioprobe's own filtering is what keeps pickles out)."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> str:
        self.calls.append(kwargs)
        return str(self.root / kwargs["repo_id"])


MODEL_FILES = {
    "config.json": b"{}",
    "model.safetensors": b"weights",
    "pytorch_model.bin": b"pickle",
    "tokenizer.json": b"{}",
    "vocab.txt": b"[PAD]\n",
    "README.md": b"# card",
    ".cache/huggingface/download/x.metadata": b"",
}


def test_model_download_keeps_safetensors_and_tokenizer_only(tmp_path):
    _files(tmp_path / "hub" / "org" / "bert", MODEL_FILES)
    hub = FakeHub(tmp_path / "hub")
    dest = tmp_path / "resources" / "bert"
    placed = download_model("org/bert", dest, revision="abc123", snapshot=hub)
    assert placed == ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]
    assert sorted(p.name for p in dest.iterdir()) == placed
    assert hub.calls == [
        {"repo_id": "org/bert", "revision": "abc123", "allow_patterns": model_patterns(False)}
    ]
    assert not any(p.endswith("*.bin") for p in model_patterns(False))
    assert (dest / "model.safetensors").read_bytes() == b"weights"
    assert not dest.with_name("bert.part").exists()


def test_a_pickle_only_model_is_refused_unless_allowed(tmp_path):
    files = {k: v for k, v in MODEL_FILES.items() if k != "model.safetensors"}
    _files(tmp_path / "hub" / "org" / "old", files)
    hub = FakeHub(tmp_path / "hub")
    dest = tmp_path / "resources" / "old"
    with pytest.raises(ConfigError, match=r"models\.old.*no safetensors.*allow_pickle"):
        download_model("org/old", dest, key="models.old", snapshot=hub)
    assert not dest.exists()
    placed = download_model("org/old", dest, allow_pickle=True, snapshot=hub)
    assert "pytorch_model.bin" in placed
    assert "*.bin" in hub.calls[-1]["allow_patterns"]


def test_a_model_without_config_is_an_error(tmp_path):
    _files(tmp_path / "hub" / "org" / "x", {"model.safetensors": b"w"})
    with pytest.raises(InputError, match=r"no config\.json"):
        download_model("org/x", tmp_path / "dest", snapshot=FakeHub(tmp_path / "hub"))


def test_a_new_download_replaces_the_old_one(tmp_path):
    repo = _files(tmp_path / "hub" / "org" / "m", MODEL_FILES)
    hub = FakeHub(tmp_path / "hub")
    dest = tmp_path / "dest"
    download_model("org/m", dest, snapshot=hub)
    (repo / "vocab.txt").unlink()
    download_model("org/m", dest, snapshot=hub)
    assert not (dest / "vocab.txt").exists()


PARQUET = {
    "bionlp2004/train/0000.parquet": b"t0",
    "bionlp2004/train/0001.parquet": b"t1",
    "bionlp2004/validation/0000.parquet": b"v",
    "bionlp2004/test/0000.parquet": b"s",
    "README.md": b"card",
}
SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def test_dataset_download_takes_the_parquet_branch_of_the_named_splits(tmp_path):
    _files(tmp_path / "hub" / "tner" / "bionlp2004", PARQUET)
    hub = FakeHub(tmp_path / "hub")
    placed = download_dataset("tner/bionlp2004", tmp_path / "dest", SPLITS, snapshot=hub)
    assert placed == sorted(k for k in PARQUET if k.endswith(".parquet"))
    call = hub.calls[0]
    assert call["repo_type"] == "dataset"
    assert call["revision"] == "refs/convert/parquet"
    assert call["allow_patterns"] == [
        "*/test/*.parquet",
        "*/train/*.parquet",
        "*/validation/*.parquet",
    ]


def test_dataset_split_in_several_configs_must_name_one(tmp_path):
    _files(tmp_path / "hub" / "d" / "x", {**PARQUET, "other/train/0000.parquet": b"o"})
    hub = FakeHub(tmp_path / "hub")
    with pytest.raises(ConfigError, match=r"several configs.*config/train"):
        download_dataset("d/x", tmp_path / "dest", SPLITS, key="tasks.t.splits", snapshot=hub)
    splits = {k: f"bionlp2004/{v}" for k, v in SPLITS.items()}
    placed = download_dataset("d/x", tmp_path / "dest", splits, snapshot=hub)
    assert "other/train/0000.parquet" not in placed
    assert dataset_patterns(splits)[0] == "bionlp2004/test/*.parquet"


def test_dataset_missing_split_names_it(tmp_path):
    _files(tmp_path / "hub" / "d" / "y", {"c/train/0.parquet": b""})
    with pytest.raises(InputError, match="no split 'validation'"):
        download_dataset(
            "d/y", tmp_path / "dest", {"train": "train", "validation": "validation"},
            snapshot=FakeHub(tmp_path / "hub"),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ({"format": "hf", "path": "tner/bionlp2004"}, True),
        ({"format": "hf", "path": "ncbi_disease"}, True),
        ({"format": "hf", "path": "./data/local"}, False),
        ({"format": "hf", "path": "/abs/dir"}, False),
        ({"format": "bio-tsv", "path": "org/name"}, False),
    ],
)
def test_is_hub_dataset(task, expected):
    assert is_hub_dataset(task) is expected


def _seed_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """The Hub cache layout huggingface_hub reads when the Hub cannot be reached."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, source in files.items():
        os.symlink(source, snap / name)


def test_real_snapshot_download_uses_the_cache_when_the_hub_is_unreachable(tmp_path, minilm_dir):
    """The production path, huggingface_hub.snapshot_download, with no network: the Hub
    endpoint refuses connections and the model comes from a seeded cache; the placed copy
    loads with transformers in offline mode."""
    cache = tmp_path / "cache"
    files = {p.name: p for p in Path(minilm_dir).iterdir() if p.is_file()}
    files["pytorch_model.bin"] = files["README.md"]  # a pickle that must not be placed
    _seed_cache(cache, "sentence-transformers/all-MiniLM-L6-v2", files)
    dest = tmp_path / "resources" / "minilm"
    code = textwrap.dedent(
        f"""
        from bioprobe.hub import allow_network, download_model
        allow_network()
        placed = download_model("sentence-transformers/all-MiniLM-L6-v2", {str(dest)!r})
        print(",".join(placed))
        import os
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(dest)!r})
        print("layers", model.config.num_hidden_layers)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_ENDPOINT": "http://127.0.0.1:9",  # connection refused: no network
        "HF_HUB_OFFLINE": "1",  # allow_network() must lift it for the download
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    placed = result.stdout.splitlines()[0].split(",")
    assert "model.safetensors" in placed and "tokenizer.json" in placed
    assert "pytorch_model.bin" not in placed and "README.md" not in placed
    assert "layers 6" in result.stdout
    assert not (dest / "model.safetensors").is_symlink()


def test_an_instruction_set_is_its_json_file_or_the_parquet_conversion(tmp_path):
    """BioInstruct's layout: one JSON file at the top of a dataset repository; the reader takes
    the directory the download placed (tests/unit/test_instructions.py reads it)."""
    from bioprobe.hub import download_instructions
    from bioprobe.instructions import read_instructions

    records = b'[{"instruction": "Define anaemia.", "input": "", "output": "A low haemoglobin."}]'
    _files(tmp_path / "hub" / "bio-nlp-umass" / "bioinstruct",
           {"biomed_instruct_25k.json": records, "README.md": b"# card"})  # fmt: skip
    hub = FakeHub(tmp_path / "hub")
    dest = tmp_path / "resources" / "instructions"
    placed = download_instructions("bio-nlp-umass/bioinstruct", dest, "json", snapshot=hub)
    assert placed == ["biomed_instruct_25k.json"]
    assert hub.calls[0]["repo_type"] == "dataset" and hub.calls[0]["revision"] is None
    assert read_instructions(dest, "json")[0]["output"] == "A low haemoglobin."
    with pytest.raises(ConfigError, match=r"no \*\.jsonl file") as info:
        download_instructions("bio-nlp-umass/bioinstruct", tmp_path / "d2", "jsonl", snapshot=hub)
    assert info.value.key == "instructions.format" and not (tmp_path / "d2").exists()


def test_an_hf_instruction_set_comes_from_the_parquet_conversion(tmp_path):
    from bioprobe.hub import PARQUET_REVISION, download_instructions

    _files(tmp_path / "hub" / "org" / "set", {"default/train/0000.parquet": b"PAR1"})
    hub = FakeHub(tmp_path / "hub")
    placed = download_instructions("org/set", tmp_path / "dest", "hf", snapshot=hub)
    assert placed == ["default/train/0000.parquet"]
    assert hub.calls[0]["revision"] == PARQUET_REVISION
