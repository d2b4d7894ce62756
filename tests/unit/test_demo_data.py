"""Demo corpora: deterministic bytes, readable by the real readers, sensible content."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bioprobe.data import prepare_task, read_bio_tsv, read_pairs_jsonl
from bioprobe.data.demo import (
    NER_FILES,
    NLI_FILES,
    NLI_LABELS,
    main,
    write_demo_ner,
    write_demo_nli,
)

MEDNLI_FIELDS = {
    "id": "pairID",
    "text_a": "sentence1",
    "text_b": "sentence2",
    "label": "gold_label",
}
SIZES = {"train": 400, "validation": 150, "test": 150}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ner")
    write_demo_ner(out)
    return out


@pytest.fixture(scope="module")
def nli_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nli")
    write_demo_nli(out)
    return out


@pytest.mark.parametrize("writer", [write_demo_ner, write_demo_nli])
def test_byte_identical_across_runs_and_seed_dependent(tmp_path, writer):
    writer(tmp_path / "a", seed=5)
    writer(tmp_path / "b", seed=5)
    writer(tmp_path / "c", seed=6)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")


def test_ner_files_parse_and_look_biomedical(ner_dir):
    assert sorted(p.name for p in ner_dir.iterdir()) == sorted(NER_FILES.values())
    splits = {split: read_bio_tsv(ner_dir / name, split=split) for split, name in NER_FILES.items()}
    for split, records in splits.items():
        assert len(records) == SIZES[split]
        tags = Counter(t for r in records for t in r["tags"])
        assert {"B-Disease", "I-Disease", "B-Chemical", "I-Chemical"} <= set(tags)
        lengths = [len(r["tokens"]) for r in records]
        assert min(lengths) >= 10 and max(lengths) <= 30
        assert any(set(r["tags"]) == {"O"} for r in records)  # sentences without entities


def mentions(records: list[dict]) -> set[str]:
    """Entity strings (multi-word mentions joined), lower-cased."""
    found, current = set(), []
    for r in records:
        for token, tag in [*zip(r["tokens"], r["tags"], strict=True), ("", "O")]:
            if tag.startswith("I-") and current:
                current.append(token)
                continue
            if current:
                found.add(" ".join(current).lower())
            current = [token] if tag.startswith("B-") else []
    return found


def test_test_mentions_are_partly_unseen_in_train(ner_dir):
    train = mentions(read_bio_tsv(ner_dir / "train.tsv"))
    test = mentions(read_bio_tsv(ner_dir / "test.tsv"))
    unseen = test - train
    assert 0.2 <= len(unseen) / len(test) <= 0.6  # neither memorisation nor a different task
    assert "type 2 diabetes mellitus" in train | test


def test_nli_files_parse_with_mednli_fields_and_are_balanced(nli_dir):
    assert sorted(p.name for p in nli_dir.iterdir()) == sorted(NLI_FILES.values())
    for split, name in NLI_FILES.items():
        records = read_pairs_jsonl(nli_dir / name, MEDNLI_FIELDS, labels=NLI_LABELS)
        assert len(records) == SIZES[split]
        counts = Counter(r["label"] for r in records).values()
        assert len(counts) == 3 and max(counts) - min(counts) <= 1


def test_hypothesis_alone_does_not_give_the_label_away(nli_dir):
    """A hypothesis-only bag-of-words classifier stays near chance (1/3)."""
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = read_pairs_jsonl(nli_dir / "train.jsonl", MEDNLI_FIELDS)
    test = read_pairs_jsonl(nli_dir / "test.jsonl", MEDNLI_FIELDS)
    model = make_pipeline(CountVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    model.fit([r["text_b"] for r in train], [r["label"] for r in train])
    assert model.score([r["text_b"] for r in test], [r["label"] for r in test]) < 0.45


def test_demo_corpora_prepare_like_the_default_config(ner_dir, nli_dir, tmp_path):
    ner = {"type": "ner", "format": "bio-tsv", "path": str(ner_dir), "splits": NER_FILES}
    meta = prepare_task(ner, tmp_path / "ner", "demo-ner")
    assert meta["labels"] == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    nli = {
        "type": "pair",
        "format": "pairs-jsonl",
        "path": str(nli_dir),
        "splits": NLI_FILES,
        "fields": MEDNLI_FIELDS,
        "labels": ["entailment", "neutral", "contradiction"],
    }
    assert prepare_task(nli, tmp_path / "nli", "demo-nli")["counts"] == SIZES


def test_cli(tmp_path, capsys):
    assert main(["ner", str(tmp_path / "ner"), "--seed", "2", "--n-train", "20"]) == 0
    assert "train\t" in capsys.readouterr().out
    assert len(read_bio_tsv(tmp_path / "ner" / "train.tsv")) == 20
    write_demo_ner(tmp_path / "ref", seed=2, n_train=20)
    assert tree_bytes(tmp_path / "ner") == tree_bytes(tmp_path / "ref")
    with pytest.raises(ValueError, match="n_test"):
        write_demo_nli(tmp_path / "x", n_test=0)


def test_cli_as_module(tmp_path):
    cmd = [sys.executable, "-W", "error", "-m", "bioprobe.data.demo", "nli", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NLI_FILES.values())
