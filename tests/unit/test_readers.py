"""Readers: canonical records out, and every input problem as one error naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bioprobe.data import readers
from bioprobe.data.readers import read_bio_tsv, read_hf, read_pairs_jsonl
from bioprobe.errors import InputError

MEDNLI = {"id": "pairID", "text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}
NLI_LABELS = ["entailment", "contradiction", "neutral"]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def error_of(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    return info.value


# --- BIO TSV ---

BIO = (
    "-DOCSTART-\tO\n"
    "\n"
    "Familial\tB-Disease\n"
    "breast\tI-Disease\n"
    "cancer\tI-Disease\n"
    "responds\tO\n"
    ".\tO\n"
    "\n"
    "\n"
    "cisplatin\tB-Chemical\n"
    "toxicity\tO\n"
    "-DOCSTART-\tO\n"
    "\n"
    "none\tO\n"
)


def test_bio_tsv_reads_sentences_and_skips_docstart(tmp_path):
    records = read_bio_tsv(write(tmp_path, "train.tsv", BIO))
    assert records == [
        {
            "id": "train-000000",
            "tokens": ["Familial", "breast", "cancer", "responds", "."],
            "tags": ["B-Disease", "I-Disease", "I-Disease", "O", "O"],
        },
        {"id": "train-000001", "tokens": ["cisplatin", "toxicity"], "tags": ["B-Chemical", "O"]},
        {"id": "train-000002", "tokens": ["none"], "tags": ["O"]},
    ]


def test_bio_tsv_split_name_sets_ids_and_crlf_is_accepted(tmp_path):
    path = write(tmp_path, "devel.tsv", "a\tO\r\nb\tB-X\r\n\r\n")
    records = read_bio_tsv(path, split="validation")
    assert records == [{"id": "validation-000000", "tokens": ["a", "b"], "tags": ["O", "B-X"]}]


def test_bio_tsv_type_scheme_collapses_tags(tmp_path):
    records = read_bio_tsv(write(tmp_path, "t.tsv", BIO), label_scheme="type")
    assert records[0]["tags"] == ["Disease", "Disease", "Disease", "O", "O"]
    assert records[1]["tags"] == ["Chemical", "O"]


def test_bio_tsv_keeps_an_i_tag_after_o(tmp_path):
    # only the syntax is validated: an I- that starts an entity is kept as it is
    records = read_bio_tsv(write(tmp_path, "t.tsv", "a\tO\nb\tI-Disease\n"))
    assert records[0]["tags"] == ["O", "I-Disease"]


def test_unknown_label_scheme(tmp_path):
    with pytest.raises(ValueError, match="label_scheme"):
        read_bio_tsv(write(tmp_path, "t.tsv", "a\tO\n"), label_scheme="iobes")


# --- pairs JSONL ---


def nli_row(pair_id: str, label: str = "entailment", **extra) -> str:
    row = {"pairID": pair_id, "sentence1": "Pt denies pain.", "sentence2": "No pain.", **extra}
    return json.dumps({"gold_label": label, **row})


def test_pairs_jsonl_maps_fields_and_ignores_extra_keys(tmp_path):
    content = nli_row("p1", extra_key=1) + "\n\n" + nli_row("p2", "neutral") + "\n"
    records = read_pairs_jsonl(write(tmp_path, "dev.jsonl", content), MEDNLI, labels=NLI_LABELS)
    assert records == [
        {"id": "p1", "text_a": "Pt denies pain.", "text_b": "No pain.", "label": "entailment"},
        {"id": "p2", "text_a": "Pt denies pain.", "text_b": "No pain.", "label": "neutral"},
    ]


def test_pairs_jsonl_generic_fields_and_generated_ids(tmp_path):
    rows = [
        {"text_a": "q", "text_b": "c", "label": "yes"},
        {"text_a": "r", "text_b": "d", "label": 1},
    ]
    path = write(tmp_path, "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    records = read_pairs_jsonl(path, {})
    assert [r["id"] for r in records] == ["train-000000", "train-000001"]
    assert records[1]["label"] == "1"


# --- Hugging Face datasets (local: save_to_disk and parquet; the Hub path is only wired) ---

datasets = pytest.importorskip("datasets")
NER_FIELDS = {"tokens": "tokens", "tags": "ner_tags"}


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    """Keep the datasets library's lock files out of the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def ner_dataset(rows: list[tuple[list[str], list[int]]]):
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=["O", "B-Gene", "I-Gene"])),
        }
    )
    data = {
        "id": [f"s{i}" for i in range(len(rows))],
        "tokens": [r[0] for r in rows],
        "ner_tags": [r[1] for r in rows],
    }
    return datasets.Dataset.from_dict(data, features=features)


GOOD_NER = [(["BRCA1", "gene"], [1, 0]), (["TNF", "alpha", "level"], [1, 2, 0])]


def test_hf_save_to_disk_datasetdict_with_classlabel_tags(tmp_path):
    datasets.DatasetDict(train=ner_dataset(GOOD_NER)).save_to_disk(tmp_path / "dd")
    records = read_hf(tmp_path / "dd", "train", "ner", {**NER_FIELDS, "id": "id"})
    assert records == [
        {"id": "s0", "tokens": ["BRCA1", "gene"], "tags": ["B-Gene", "O"]},
        {"id": "s1", "tokens": ["TNF", "alpha", "level"], "tags": ["B-Gene", "I-Gene", "O"]},
    ]
    typed = read_hf(tmp_path / "dd", "train", "ner", NER_FIELDS, label_scheme="type")
    assert typed[1] == {"id": "train-000001", "tokens": ["TNF", "alpha", "level"],
                        "tags": ["Gene", "Gene", "O"]}  # fmt: skip


def test_hf_one_saved_dataset_per_split(tmp_path):
    ner_dataset(GOOD_NER).save_to_disk(tmp_path / "ds" / "validation")
    records = read_hf(tmp_path / "ds", "validation", "ner", NER_FIELDS)
    assert [r["id"] for r in records] == ["validation-000000", "validation-000001"]


def test_hf_parquet_hub_layout_with_tag_names(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "pq" / "data").mkdir(parents=True)
    table = pa.table({"tokens": [["a", "b"], ["c"]], "tags": [[0, 1], [2]]})  # no HF metadata
    pq.write_table(table, tmp_path / "pq" / "data" / "test-00000-of-00001.parquet")
    records = read_hf(tmp_path / "pq", "test", "ner", {}, tag_names=["O", "B-Cell", "I-Cell"])
    assert [r["tags"] for r in records] == [["O", "B-Cell"], ["I-Cell"]]
    err = error_of(read_hf, tmp_path / "pq", "test", "ner", {}, tag_names=["O", "B-Cell"])
    assert str(err).startswith(f"{tmp_path / 'pq'}[test]: row 1: tag 2 has no name")
    err = error_of(read_hf, tmp_path / "pq", "test", "ner", {})
    assert "row 0: integer tag 0 needs `tag_names`" in str(err)


def test_hf_parquet_pairs_by_file_name_and_classlabel(tmp_path):
    features = datasets.Features(
        {
            "question": datasets.Value("string"),
            "context": datasets.Value("string"),
            "answer": datasets.ClassLabel(names=["no", "yes"]),
        }
    )
    data = {"question": ["Q1?", "Q2?"], "context": ["C1.", "C2."], "answer": [1, 0]}
    datasets.Dataset.from_dict(data, features=features).to_parquet(tmp_path / "train.parquet")
    fields = {"text_a": "question", "text_b": "context", "label": "answer"}
    records = read_hf(tmp_path, "train.parquet", "pair", fields, split="train")
    assert records == [
        {"id": "train-000000", "text_a": "Q1?", "text_b": "C1.", "label": "yes"},
        {"id": "train-000001", "text_a": "Q2?", "text_b": "C2.", "label": "no"},
    ]
    err = error_of(read_hf, tmp_path, "train", "pair", fields, labels=["yes"])
    assert str(err).startswith(f"{tmp_path}[train]: row 1: unknown label 'no'")


def test_hf_hub_id_reads_the_parquet_conversion(monkeypatch):
    """Offline, only the wiring is checked: which parquet files a Hub id resolves to."""
    seen = []
    monkeypatch.setattr(readers, "_load_parquet", lambda files, where: seen.append(files) or [])
    monkeypatch.setattr(readers, "_hub_config", lambda base, repo_id: "bionlp2004")
    readers._open_hub("tner/bionlp2004", "train", None, "w")
    readers._open_hub("bigbio/x", "cfg/test", "abc123", "w")
    assert seen == [
        "hf://datasets/tner/bionlp2004@refs%2Fconvert%2Fparquet/bionlp2004/train/*.parquet",
        "hf://datasets/bigbio/x@abc123/cfg/test/*.parquet",
    ]


def test_bare_b_and_i_tags_are_one_entity_type(tmp_path):
    """BLURB writes its single-type NER corpora with B/I/O tags: read as B-ENTITY/I-ENTITY."""
    from bioprobe.data.readers import SINGLE_TYPE, read_bio_tsv

    path = tmp_path / "train.tsv"
    path.write_text("Naloxone\tB\nreverses\tO\nhypo\tB\n-\tI\ntension\tI\n")
    (record,) = read_bio_tsv(path)
    assert record["tags"] == [
        f"B-{SINGLE_TYPE}",
        "O",
        f"B-{SINGLE_TYPE}",
        f"I-{SINGLE_TYPE}",
        f"I-{SINGLE_TYPE}",
    ]
