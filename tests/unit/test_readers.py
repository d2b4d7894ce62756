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


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("a\tO\nb\tO\tX\n", 2, "2 tab-separated fields"),
        ("a\tO\n\nb\n", 3, "token/tag mismatch"),
        ("a\tO\nb O\n", 2, "found 1"),
        ("a\tB_Disease\n", 1, "not IOB2"),
        ("a\tO\nb\tb-Disease\n", 2, "not IOB2"),
        ("a\tO\nb\tB-\n", 2, "not IOB2"),
        ("a\tO\n\tO\n", 2, "empty token"),
        ("a\tO\nb\t\n", 2, "not IOB2"),
    ],
)
def test_bio_tsv_errors_name_file_and_line(tmp_path, content, line, fragment):
    path = write(tmp_path, "bad.tsv", content)
    err = error_of(read_bio_tsv, path)
    assert err.path == str(path) and err.line == line
    assert fragment in str(err) and str(err).startswith(f"{path}:{line}: ")


def test_bio_tsv_unknown_label(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tB-Disease\n\nb\tB-Chemical\n")
    err = error_of(read_bio_tsv, path, labels=["O", "B-Disease", "I-Disease"])
    assert err.line == 3 and "unknown label 'B-Chemical'" in str(err)


def test_bio_tsv_unknown_label_in_type_scheme(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tB-Disease\nb\tI-Gene\n")
    err = error_of(read_bio_tsv, path, "type", labels=["O", "Disease"], labels_origin="train")
    assert err.line == 2 and "'Gene': not in train" in str(err)


def test_bio_tsv_non_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "t.tsv", b"a\tO\n\ncaf\xe9\tO\n")
    err = error_of(read_bio_tsv, path)
    assert err.line == 3 and "not UTF-8" in str(err)


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART-\tO\n\n-DOCSTART-\tO\n"])
def test_bio_tsv_empty_split(tmp_path, content):
    path = write(tmp_path, "t.tsv", content)
    err = error_of(read_bio_tsv, path)
    assert err.path == str(path) and err.line is None and "no examples" in str(err)


def test_missing_file(tmp_path):
    err = error_of(read_bio_tsv, tmp_path / "absent.tsv")
    assert "file not found" in str(err) and "absent.tsv" in str(err)


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


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        ([nli_row("a"), '{"pairID": "b", '], 2, "invalid JSON"),
        ([nli_row("a"), "[1, 2]"], 2, "expected a JSON object"),
        ([nli_row("a"), json.dumps({"pairID": "b", "sentence1": "x", "gold_label": "n"})], 2,
         "missing field 'sentence2'"),
        ([nli_row("a"), json.dumps({"sentence1": "x", "sentence2": "y", "gold_label": "n"})], 2,
         "missing field 'pairID'"),
        ([nli_row("a"), nli_row("b", sentence1="  ")], 2, "empty text in field 'sentence1'"),
        ([nli_row("a"), nli_row("b", sentence2=3)], 2, "must be a string"),
        ([nli_row("a"), "", nli_row("b"), nli_row("a")], 4,
         "duplicate id 'a' (first seen at line 1)"),
        ([nli_row("a"), nli_row("b", "maybe")], 2, "unknown label 'maybe'"),
        ([nli_row("a"), nli_row("b", "")], 2, "empty label"),
        ([nli_row("a"), nli_row("b", None)], 2, "label must be a string or integer"),
        ([nli_row("a"), nli_row("", "neutral")], 2, "empty id"),
    ],
)  # fmt: skip
def test_pairs_jsonl_errors_name_file_and_line(tmp_path, lines, line, fragment):
    path = write(tmp_path, "dev.jsonl", "\n".join(lines) + "\n")
    err = error_of(read_pairs_jsonl, path, MEDNLI, labels=NLI_LABELS)
    assert err.path == str(path) and err.line == line
    assert fragment in str(err) and str(err).startswith(f"{path}:{line}: ")


def test_pairs_jsonl_non_utf8(tmp_path):
    content = nli_row("a").encode() + b"\n" + nli_row("b").encode().replace(b"pain", b"p\xffin")
    err = error_of(read_pairs_jsonl, write(tmp_path, "d.jsonl", content), MEDNLI)
    assert err.line == 2 and "not UTF-8" in str(err)


def test_pairs_jsonl_empty_split(tmp_path):
    path = write(tmp_path, "test.jsonl", "\n  \n")
    err = error_of(read_pairs_jsonl, path, MEDNLI)
    assert err.path == str(path) and "no examples" in str(err)


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


@pytest.mark.parametrize(
    ("rows", "row", "fragment"),
    [
        ([(["a", "b"], [0, 0]), (["c", "d"], [1])], 1, "token/tag mismatch: 2 tokens, 1 tags"),
        ([(["a"], [0]), ([], [])], 1, "empty sentence"),
        ([(["a"], [0]), (["a", ""], [0, 0])], 1, "empty token"),
    ],
)
def test_hf_row_errors_name_split_and_row(tmp_path, rows, row, fragment):
    datasets.DatasetDict(train=ner_dataset(GOOD_NER), test=ner_dataset(rows)).save_to_disk(
        tmp_path / "dd"
    )
    err = error_of(read_hf, tmp_path / "dd", "test", "ner", NER_FIELDS)
    assert str(err).startswith(f"{tmp_path / 'dd'}[test]: row {row}: ") and fragment in str(err)


def test_hf_duplicate_ids_and_missing_field_and_split(tmp_path):
    dup = ner_dataset(GOOD_NER).map(lambda _: {"id": "same"})
    datasets.DatasetDict(train=dup).save_to_disk(tmp_path / "dd")
    err = error_of(read_hf, tmp_path / "dd", "train", "ner", {**NER_FIELDS, "id": "id"})
    assert "row 1: duplicate id 'same' (first seen at row 0)" in str(err)
    err = error_of(
        read_hf, tmp_path / "dd", "train", "ner", {"tokens": "words", "tags": "ner_tags"}
    )
    assert "[train]: missing field 'words'" in str(err)
    err = error_of(read_hf, tmp_path / "dd", "validation", "ner", NER_FIELDS)
    assert "no split 'validation' (splits: train)" in str(err)


def test_hf_empty_split_and_missing_sources(tmp_path):
    ner_dataset(GOOD_NER).select([]).to_parquet(tmp_path / "pq" / "train.parquet")
    err = error_of(read_hf, tmp_path / "pq", "train", "ner", NER_FIELDS)
    assert str(err) == f"{tmp_path / 'pq'}[train]: no examples (the split is empty)"
    (tmp_path / "empty").mkdir()
    err = error_of(read_hf, tmp_path / "empty", "train", "ner", NER_FIELDS)
    assert "no saved dataset or parquet files for split 'train'" in str(err)
    err = error_of(read_hf, str(tmp_path / "absent"), "train", "ner", NER_FIELDS)
    assert "dataset directory is missing" in str(err)


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
