"""prepare_task: canonical splits + labels.json, label sets, all-or-nothing writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bioprobe.data import corpus_text, load_labels, load_split, prepare_task
from bioprobe.errors import InputError

NER_SPLITS = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
PAIR_SPLITS = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
MEDNLI_FIELDS = {
    "id": "pairID",
    "text_a": "sentence1",
    "text_b": "sentence2",
    "label": "gold_label",
}
OUTPUTS = ["labels.json", "test.jsonl", "train.jsonl", "validation.jsonl"]


def tsv(*sentences: str) -> str:
    """Sentences written as 'tok/TAG tok/TAG ...'."""
    blocks = ["".join(f"{w.rsplit('/', 1)[0]}\t{w.rsplit('/', 1)[1]}\n" for w in s.split())
              for s in sentences]  # fmt: skip
    return "\n".join(blocks)


def ner_task(root: Path, train=None, devel=None, test=None, **cfg) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    texts = {
        "train.tsv": train or tsv("aspirin/B-Chemical cures/O gout/B-Disease", "x/O"),
        "devel.tsv": devel or tsv("type/B-Disease 2/I-Disease diabetes/I-Disease"),
        "test.tsv": test or tsv("no/O entity/O", "lithium/B-Chemical"),
    }
    for name, text in texts.items():
        (root / name).write_text(text, encoding="utf-8")
    return {"type": "ner", "format": "bio-tsv", "path": str(root), "splits": NER_SPLITS, **cfg}


def pair_task(root: Path, labels_by_split=None, **cfg) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    labels_by_split = labels_by_split or {
        "train.jsonl": ["neutral", "entailment", "contradiction", "entailment"],
        "dev.jsonl": ["entailment", "neutral"],
        "test.jsonl": ["contradiction"],
    }
    for name, labels in labels_by_split.items():
        rows = [
            {
                "pairID": f"{name}-{i}",
                "sentence1": "Pt febrile.",
                "sentence2": "Fever.",
                "gold_label": y,
            }
            for i, y in enumerate(labels)
        ]
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"type": "pair", "format": "pairs-jsonl", "path": str(root), "splits": PAIR_SPLITS,
            "fields": MEDNLI_FIELDS, **cfg}  # fmt: skip


def test_ner_task_outputs(tmp_path):
    meta = prepare_task(ner_task(tmp_path / "raw"), tmp_path / "out", "toy")
    assert meta == {
        "task_type": "ner",
        "labels": ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"],
        "label_scheme": "bio",
        "entity_types": ["Chemical", "Disease"],
        "counts": {"train": 2, "validation": 1, "test": 2},
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == OUTPUTS
    assert load_labels(tmp_path / "out") == meta
    assert load_split(tmp_path / "out", "validation") == [
        {
            "id": "validation-000000",
            "tokens": ["type", "2", "diabetes"],
            "tags": ["B-Disease", "I-Disease", "I-Disease"],
        }
    ]
    first = (tmp_path / "out" / "train.jsonl").read_text().splitlines()[0]
    assert list(json.loads(first)) == ["id", "tags", "tokens"]  # keys sorted


def test_type_scheme_collapses_tags(tmp_path):
    meta = prepare_task(ner_task(tmp_path / "raw", label_scheme="type"), tmp_path / "out", "toy")
    assert meta["labels"] == ["O", "Chemical", "Disease"] and meta["label_scheme"] == "type"
    assert load_split(tmp_path / "out", "train")[0]["tags"] == ["Chemical", "O", "Disease"]


def test_explicit_ner_labels_keep_their_order(tmp_path):
    labels = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]
    meta = prepare_task(ner_task(tmp_path / "raw", labels=labels), tmp_path / "out", "toy")
    assert meta["labels"] == labels
    typed = ner_task(tmp_path / "raw", labels=labels, label_scheme="type")
    assert prepare_task(typed, tmp_path / "out2", "toy")["labels"] == ["O", "Disease", "Chemical"]


def test_i_tag_of_a_train_type_is_allowed_in_test(tmp_path):
    # train has only single-word diseases, but I-Disease belongs to the Disease label set
    cfg = ner_task(tmp_path / "raw", test=tsv("sickle/B-Disease cell/I-Disease"))
    assert prepare_task(cfg, tmp_path / "out", "toy")["counts"]["test"] == 1


def test_pair_task_labels_sorted_or_explicit(tmp_path):
    meta = prepare_task(pair_task(tmp_path / "raw"), tmp_path / "out", "nli")
    assert meta["labels"] == ["contradiction", "entailment", "neutral"]
    assert meta["label_scheme"] is None and meta["entity_types"] == []
    assert meta["counts"] == {"train": 4, "validation": 2, "test": 1}
    assert load_split(tmp_path / "out", "test") == [
        {
            "id": "test.jsonl-0",
            "text_a": "Pt febrile.",
            "text_b": "Fever.",
            "label": "contradiction",
        }
    ]
    explicit = ["entailment", "neutral", "contradiction"]
    meta = prepare_task(pair_task(tmp_path / "raw", labels=explicit), tmp_path / "out2", "nli")
    assert meta["labels"] == explicit


def test_outputs_are_byte_deterministic(tmp_path):
    cfg = pair_task(tmp_path / "raw")
    prepare_task(cfg, tmp_path / "a", "nli")
    prepare_task(dict(reversed(list(cfg.items()))), tmp_path / "b", "nli")
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_hf_task_from_save_to_disk(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    split = datasets.Dataset.from_dict(
        {"q": ["Is it?", "Why?"], "ctx": ["Yes it is.", "Because."], "y": ["yes", "no"]}
    )
    datasets.DatasetDict(train=split, validation=split, test=split).save_to_disk(tmp_path / "hf")
    cfg = {"type": "pair", "format": "hf", "path": str(tmp_path / "hf"),
           "splits": {"train": "train", "validation": "validation", "test": "test"},
           "fields": {"text_a": "q", "text_b": "ctx", "label": "y"}}  # fmt: skip
    meta = prepare_task(cfg, tmp_path / "out", "qa")
    assert meta["labels"] == ["no", "yes"] and meta["counts"]["validation"] == 2
    assert load_split(tmp_path / "out", "validation")[0]["id"] == "validation-000000"


def test_load_errors_and_corpus_text(tmp_path):
    with pytest.raises(InputError, match="run prepare_task first"):
        load_labels(tmp_path)
    with pytest.raises(InputError, match="run prepare_task first"):
        load_split(tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_split(tmp_path, "dev")
    prepare_task(ner_task(tmp_path / "raw"), tmp_path / "ner", "toy")
    assert corpus_text(tmp_path / "ner" / "train.jsonl") == ["aspirin cures gout", "x"]
    prepare_task(pair_task(tmp_path / "raw2"), tmp_path / "nli", "nli")
    assert corpus_text(tmp_path / "nli" / "test.jsonl") == ["Pt febrile.", "Fever."]


# --- the real corpora beside the repository (CI provides them) ---

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent")


@pytest.mark.integration
@needs_shared
def test_ncbi_disease(tmp_path):
    cfg = {"type": "ner", "format": "bio-tsv", "path": str(SHARED / "ncbi_disease"),
           "splits": NER_SPLITS}  # fmt: skip
    meta = prepare_task(cfg, tmp_path, "ncbi-disease")
    assert meta["labels"] == ["O", "B-Disease", "I-Disease"]
    assert meta["counts"] == {"train": 5424, "validation": 923, "test": 940}


@pytest.mark.integration
@needs_shared
@pytest.mark.parametrize("scheme", ["bio", "type"])
def test_jnlpba(tmp_path, scheme):
    cfg = {"type": "ner", "format": "bio-tsv", "path": str(SHARED / "jnlpba"),
           "splits": NER_SPLITS, "label_scheme": scheme}  # fmt: skip
    meta = prepare_task(cfg, tmp_path, "jnlpba")
    assert meta["counts"] == {"train": 16805, "validation": 1739, "test": 3856}
    assert meta["entity_types"] == ["DNA", "RNA", "cell_line", "cell_type", "protein"]
    assert len(meta["labels"]) == (11 if scheme == "bio" else 6)
    train = load_split(tmp_path, "train")
    assert all("-DOCSTART-" not in r["tokens"] for r in train)
    assert sum(len(r["tokens"]) for r in train) == 445042


@pytest.mark.integration
@needs_shared
def test_pubmedqa(tmp_path):
    cfg = {"type": "pair", "format": "pairs-jsonl", "path": str(SHARED / "pubmedqa"),
           "splits": {"train": "pqal_train.jsonl", "validation": "pqal_dev.jsonl",
                      "test": "pqal_test.jsonl"},
           "fields": {"id": "id", "text_a": "question", "text_b": "context",
                      "label": "label"}}  # fmt: skip
    meta = prepare_task(cfg, tmp_path, "pubmedqa")
    assert meta["labels"] == ["maybe", "no", "yes"]
    assert meta["counts"] == {"train": 450, "validation": 50, "test": 500}
    record = load_split(tmp_path, "test")[0]
    assert sorted(record) == ["id", "label", "text_a", "text_b"]  # long_answer not carried over
