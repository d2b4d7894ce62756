"""Every kind of bad input is one clear error, raised before any work where possible, that names
the file and line (data) or the config key (config) — one table, a row per case.

Each row says what it proves. Config mistakes are caught at DAG time (validate_config and the
data checks run from rules/common.smk); that a real `snakemake` run then stops before any job is
shown end to end in tests/workflow/test_reliability.py (config keys, undefined ids) and
tests/workflow/test_planning.py (missing MedNLI). Data is validated by prepare_task, the first
job; that it writes nothing on an error is the last tests here. Over-long sentences are not an
error: they are counted and reported (the last tests).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bioprobe.config import validate_config
from bioprobe.data import prepare_task
from bioprobe.data.readers import read_bio_tsv, read_hf, read_pairs_jsonl
from bioprobe.errors import BioprobeError, InputError
from bioprobe.pipeline.checks import missing_task_data
from bioprobe.pipeline.grid import check_defined

from .test_config import minimal
from .test_prepare import MEDNLI_FIELDS, OUTPUTS, PAIR_SPLITS, ner_task, pair_task, tsv
from .test_readers import (  # noqa: F401  (_datasets_cache: an autouse fixture, used by import)
    GOOD_NER,
    MEDNLI,
    NER_FIELDS,
    NLI_LABELS,
    _datasets_cache,
    datasets,
    ner_dataset,
    nli_row,
    write,
)


@dataclass(frozen=True)
class Case:
    proves: str
    #: runs the reader / validator on input it writes under tmp_path; raises, or (the DAG-time
    #: data checks) returns the problems found
    call: Callable[[Path], Any]
    #: how the message must start: the file and line, or the config key
    where: Callable[[Path], str]
    says: str


def at(name: str, line: int | None = None) -> Callable[[Path], str]:
    return lambda tmp: f"{tmp / name}:{line}: " if line else f"{tmp / name}: "


def row_of(split: str, row: int) -> Callable[[Path], str]:
    return lambda tmp: f"{tmp / 'dd'}[{split}]: row {row}: "


def key(name: str) -> Callable[[Path], str]:
    return lambda tmp: f"config key '{name}': "


def config(**patch) -> Callable[[Path], Any]:
    return lambda tmp: validate_config(minimal(**patch))


def task_config(change: Callable[[dict], None]) -> Callable[[Path], Any]:
    def call(tmp):
        cfg = minimal()
        change(cfg["tasks"]["ner"])
        return validate_config(cfg)

    return call


def bio(content: str | bytes, **kwargs) -> Callable[[Path], Any]:
    return lambda tmp: read_bio_tsv(write(tmp, "bad.tsv", content), **kwargs)


def pairs(*lines: str | bytes) -> Callable[[Path], Any]:
    def call(tmp):
        content = b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n"
        return read_pairs_jsonl(write(tmp, "dev.jsonl", content), MEDNLI, labels=NLI_LABELS)

    return call


def hf_ner(rows, fields=None, split="test") -> Callable[[Path], Any]:
    def call(tmp):
        splits = {"train": ner_dataset(GOOD_NER), "test": ner_dataset(rows)}
        datasets.DatasetDict(splits).save_to_disk(tmp / "dd")
        return read_hf(tmp / "dd", split, "ner", fields or {**NER_FIELDS, "id": "id"})

    return call


def prepare(make_cfg: Callable[[Path], dict], task_id: str = "toy") -> Callable[[Path], Any]:
    return lambda tmp: prepare_task(make_cfg(tmp), tmp / "out", task_id)


def dag_check(make_cfg: Callable[[Path], dict]) -> Callable[[Path], Any]:
    return lambda tmp: missing_task_data({"tasks": {"t": make_cfg(tmp)}}, tmp)


def undefined(**wildcards) -> Callable[[Path], Any]:
    return lambda tmp: check_defined(validate_config(minimal()), SimpleNamespace(**wildcards))


def without_test_file(tmp: Path) -> dict:
    cfg = ner_task(tmp / "raw")
    (tmp / "raw" / "test.tsv").unlink()
    return cfg


def hf_duplicate_ids(tmp: Path):
    dup = ner_dataset(GOOD_NER).map(lambda _: {"id": "same"})
    datasets.DatasetDict(train=dup).save_to_disk(tmp / "dd")
    return read_hf(tmp / "dd", "train", "ner", {**NER_FIELDS, "id": "id"})


def hf_empty_parquet(tmp: Path):
    ner_dataset(GOOD_NER).select([]).to_parquet(tmp / "pq" / "train.parquet")
    return read_hf(tmp / "pq", "train", "ner", NER_FIELDS)


MEDNLI_SPLITS = {"train": "mli_train_v1.jsonl", "validation": "mli_dev_v1.jsonl",
                 "test": "mli_test_v1.jsonl"}  # fmt: skip
BIO_CFG = {"type": "ner", "format": "bio-tsv", "splits": PAIR_SPLITS}

CASES = {
    # --- config: checked against the strict schema at DAG time ---
    "unknown-key": Case("a misspelt top-level key is named, with the key it resembles",
                        config(sizs=[0]), key("sizs"), "unknown key (did you mean 'sizes'?)"),
    "unknown-nested-key": Case("a misspelt key inside a block is named by its full path",
                               config(training={"learning_rat": 1}),
                               key("training.learning_rat"), "did you mean 'learning_rate'"),
    "unknown-method": Case("a method the schema does not know is an unknown key",
                           config(methods={"fulll": {}}), key("methods.fulll"), "fulll"),
    "wrong-type": Case("a value of the wrong type names its key and the type wanted",
                       config(training={"epochs": "three"}), key("training.epochs"),
                       "not of type 'number'"),
    "wrong-type-in-list": Case("a wrong type inside a list names the item",
                               config(seeds=["one"]), key("seeds.0"), "not of type 'integer'"),
    "wrong-enum": Case("a value outside a closed set names the task's key",
                       task_config(lambda t: t.update(format="csv")), key("tasks.ner.format"),
                       "is not one of"),
    "missing-required": Case("a missing required key names the block it belongs to",
                             task_config(lambda t: t["splits"].pop("test")),
                             key("tasks.ner.splits"), "'test' is a required property"),
    "bad-id": Case("a task or model id that could escape a path is refused",
                   config(models={"Bad_Id": {"source": "x"}}), key("models"), "ids must match"),
    "override-out-of-range": Case("a per-model override is checked like the defaults",
                                  config(models={"m": {"source": "x",
                                                       "training": {"batch_size": 0}}}),
                                  key("models.m.training.batch_size"), "minimum"),
    "scratch-without-block": Case("a scratch model without its scratch: block is refused",
                                  config(models={"m": {"source": "scratch"}}), key("models.m"),
                                  "scratch:"),
    "scratch-block-on-hub": Case(
        "a scratch: block on a model that is not scratch is refused",
        config(models={"m": {"source": "x", "scratch": {"family": "gpt2"}}}),
        key("models.m.scratch"),
        "only applies to source: scratch",
    ),
    "no-models": Case("an empty models: block is refused", config(models={}), key("models"),
                      "non-empty"),
    # --- models: checked where a model is resolved (at DAG time, from rules/common.smk) ---
    "model-without-tokenizer": Case(
        "a model directory without tokenizer files is refused (every word would be [UNK])",
        lambda tmp: (write(tmp, "config.json", "{}"), __import__(
            "bioprobe.models", fromlist=["_"]).resolve_model("m", {"source": str(tmp)}))[-1],
        key("models.m.source"), "has no tokenizer files"),
    "model-truncated-weights": Case(
        "a truncated safetensors file is named with the model's source key",
        lambda tmp: (write(tmp, "vocab.txt", "[UNK]\n"), write(
            tmp, "model.safetensors", (62).to_bytes(8, "little") + b'{"w": {"dtype": "F32", '
            b'"shape": [4], "data_offsets": [0, 16]}}' + b"\0" * 8),
            __import__("bioprobe.models", fromlist=["_"]).resolve_model(
                "m", {"source": str(tmp)}))[-1],
        key("models.m.source"), "describes 16 bytes of tensors but the file holds 8: truncated"),
    "max-length-over-positions": Case(
        "a max_length past the model's position embeddings names the key and the limit",
        lambda tmp: (lambda m: m.check_max_length(m.resolve_model("m", {
            "source": "scratch", "scratch": {"family": "bert", "hidden_size": 8, "num_layers": 1,
                                             "num_heads": 1, "intermediate_size": 8,
                                             "vocab_size": 50, "max_position": 16}}), 64,
            key="training.max_length"))(__import__("bioprobe.models", fromlist=["_"])),
        key("training.max_length"), "cover 16 (models.m.scratch.max_position 16)"),
    "size-above-100": Case("a training size above 100 % is refused", config(sizes=[0, 101]),
                           key("sizes.1"), "maximum of 100"),
    "size-below-0": Case("a negative training size is refused", config(sizes=[-1]),
                         key("sizes.0"), "minimum of 0"),
    "undefined-task": Case("a task id used in a requested path but not defined is named",
                           undefined(task="nosuch", model="m"), key("tasks.nosuch"),
                           "task 'nosuch' is referenced"),
    "undefined-model": Case("a model id used in a requested path but not defined is named",
                            undefined(task="ner", model="gpt5"), key("models.gpt5"),
                            "defined models: m"),
    "format-for-type": Case("a data format that cannot hold the task type names the key",
                            prepare(lambda tmp: {**ner_task(tmp / "raw"), "type": "pair"}),
                            key("tasks.toy.format"), ""),
    "format-for-type-dag": Case("a format that cannot hold the task type stops the plan",
                                task_config(lambda t: t.update(type="pair")),
                                key("tasks.ner.format"),
                                "format 'bio-tsv' cannot hold a 'pair' task (formats for "
                                "'pair': hf, pairs-jsonl, tsv)"),
    "ner-labels-without-o-dag": Case("an unusable explicit label set stops the plan",
                                     task_config(lambda t: t.update(labels=["B-X", "I-X"])),
                                     key("tasks.ner.labels"), "must contain 'O'"),
    "ner-labels-without-o": Case("an explicit NER label set must be a usable tag set",
                                 prepare(lambda tmp: ner_task(tmp / "raw",
                                                              labels=["B-Disease", "I-Disease"])),
                                 key("tasks.toy.labels"), ""),
    "ner-labels-bio-without-b-i": Case(
        "an explicit BIO label set needs B-/I- tags",
        prepare(lambda tmp: ner_task(tmp / "raw", labels=["O", "Disease"])),
        key("tasks.toy.labels"),
        "",
    ),
    # --- missing data: found at DAG time (a real run stops in onstart), and by prepare_task ---
    "missing-directory-dag": Case("a missing data directory is named before any job",
                                  dag_check(lambda tmp: {**BIO_CFG, "path": "nowhere"}),
                                  key("tasks.t.path"), "data directory 'nowhere' does not exist"),
    "missing-mednli-dag": Case("missing MedNLI says it is credentialed and which files to get",
                               dag_check(lambda tmp: {**BIO_CFG, "path": "resources/mednli",
                                                      "splits": MEDNLI_SPLITS}),
                               key("tasks.t.path"), "credentialed data: download it from "
                               "PhysioNet and put mli_train_v1.jsonl"),
    "missing-split-file-dag": Case("a missing split file is named by its split's key",
                                   dag_check(lambda tmp: {**ner_task(tmp / "d"),
                                                          "path": "d",
                                                          "splits": {**PAIR_SPLITS,
                                                                     "train": "train.tsv",
                                                                     "validation": "devel.tsv",
                                                                     "test": "gone.tsv"}}),
                                   key("tasks.t.splits.test"), "file 'd/gone.tsv' not found"),
    "missing-mednli-job": Case("the job reading a missing MedNLI says where to put it",
                               prepare(lambda tmp: {"type": "pair", "format": "pairs-jsonl",
                                                    "path": str(tmp / "mednli"),
                                                    "splits": PAIR_SPLITS,
                                                    "fields": MEDNLI_FIELDS}, "mednli"),
                               at("mednli"),
                               "put its split files (train.jsonl, dev.jsonl, test.jsonl) there"),
    "missing-split-file-job": Case("the job names a split file that disappeared",
                                   prepare(without_test_file), at("raw/test.tsv"),
                                   "test split file of task 'toy' is missing"),
    "missing-file": Case("a reader names a file that does not exist",
                         lambda tmp: read_bio_tsv(tmp / "absent.tsv"), at("absent.tsv"),
                         "file not found"),
    # --- BIO TSV, file and line ---
    "bio-extra-column": Case("a token/tag line with 3 fields names its line",
                             bio("a\tO\nb\tO\tX\n"), at("bad.tsv", 2), "2 tab-separated fields"),
    "bio-missing-tag": Case("a token without a tag is a token/tag mismatch",
                            bio("a\tO\n\nb\n"), at("bad.tsv", 3), "token/tag mismatch"),
    "bio-space-not-tab": Case("a space instead of a tab is one field, not two",
                              bio("a\tO\nb O\n"), at("bad.tsv", 2), "found 1"),
    "bio-empty-token": Case("an empty token is refused", bio("a\tO\n\tO\n"), at("bad.tsv", 2),
                            "empty token"),
    "not-bio-underscore": Case("B_X is not a BIO tag", bio("a\tB_Disease\n"), at("bad.tsv", 1),
                               "not IOB2"),
    "not-bio-lowercase": Case("b-X is not a BIO tag", bio("a\tO\nb\tb-Disease\n"),
                              at("bad.tsv", 2), "not IOB2"),
    "not-bio-no-type": Case("B- without a type is not a BIO tag", bio("a\tO\nb\tB-\n"),
                            at("bad.tsv", 2), "not IOB2"),
    "not-bio-empty": Case("an empty tag is not a BIO tag", bio("a\tO\nb\t\n"), at("bad.tsv", 2),
                          "not IOB2"),
    "bio-unknown-label": Case("a tag outside the label set names its line",
                              bio("a\tB-Disease\n\nb\tB-Chemical\n",
                                  labels=["O", "B-Disease", "I-Disease"]),
                              at("bad.tsv", 3), "unknown label 'B-Chemical'"),
    "bio-unknown-type": Case("the label set is checked after collapsing to entity types",
                             bio("a\tB-Disease\nb\tI-Gene\n", label_scheme="type",
                                 labels=["O", "Disease"], labels_origin="train"),
                             at("bad.tsv", 2), "'Gene': not in train"),
    "bio-not-utf8": Case("bytes that are not UTF-8 name their line",
                         bio(b"a\tO\n\ncaf\xe9\tO\n"), at("bad.tsv", 3), "not UTF-8"),
    "bio-empty-split": Case("an empty file is an empty split", bio(""), at("bad.tsv"),
                            "no examples (the split is empty)"),
    "bio-only-docstart": Case("a file of -DOCSTART- lines is an empty split",
                              bio("-DOCSTART-\tO\n\n-DOCSTART-\tO\n"), at("bad.tsv"),
                              "no examples"),
    # --- JSONL pairs, file and line ---
    "pair-missing-text": Case("a pair row without its second sentence names the field",
                              pairs(nli_row("a"), json.dumps({"pairID": "b", "sentence1": "x",
                                                              "gold_label": "neutral"})),
                              at("dev.jsonl", 2), "missing field 'sentence2'"),
    "pair-missing-id": Case("a pair row without its id field names the field",
                            pairs(nli_row("a"), json.dumps({"sentence1": "x", "sentence2": "y",
                                                            "gold_label": "neutral"})),
                            at("dev.jsonl", 2), "missing field 'pairID'"),
    "pair-missing-label": Case("a pair row without its label names the field",
                               pairs(nli_row("a"), json.dumps({"pairID": "b", "sentence1": "x",
                                                               "sentence2": "y"})),
                               at("dev.jsonl", 2), "missing field 'gold_label'"),
    "pair-duplicate-id": Case("a duplicate id names both lines (blank lines counted)",
                              pairs(nli_row("a"), "", nli_row("b"), nli_row("a")),
                              at("dev.jsonl", 4), "duplicate id 'a' (first seen at line 1)"),
    "pair-unknown-label": Case("a label outside the label set names its line",
                               pairs(nli_row("a"), nli_row("b", "maybe")), at("dev.jsonl", 2),
                               "unknown label 'maybe'"),
    "pair-empty-label": Case("an empty label is refused", pairs(nli_row("a"), nli_row("b", "")),
                             at("dev.jsonl", 2), "empty label"),
    "pair-null-label": Case("a null label is refused", pairs(nli_row("a"), nli_row("b", None)),
                            at("dev.jsonl", 2), "label must be a string or integer"),
    "pair-empty-id": Case("an empty id is refused", pairs(nli_row("a"), nli_row("", "neutral")),
                          at("dev.jsonl", 2), "empty id"),
    "pair-empty-text": Case("a blank sentence is refused",
                            pairs(nli_row("a"), nli_row("b", sentence1="  ")),
                            at("dev.jsonl", 2), "empty text in field 'sentence1'"),
    "pair-text-type": Case("a sentence that is not a string is refused",
                           pairs(nli_row("a"), nli_row("b", sentence2=3)), at("dev.jsonl", 2),
                           "must be a string"),
    "pair-invalid-json": Case("a line that is not JSON names its line",
                              pairs(nli_row("a"), '{"pairID": "b", '), at("dev.jsonl", 2),
                              "invalid JSON"),
    "pair-not-object": Case("a JSON line that is not an object is refused",
                            pairs(nli_row("a"), "[1, 2]"), at("dev.jsonl", 2),
                            "expected a JSON object"),
    "pair-json-array": Case("a file that is one JSON array, not JSON Lines, is said to be one",
                            pairs("[", f"  {nli_row('a')},", f"  {nli_row('b')}", "]"),
                            at("dev.jsonl", 1),
                            "looks like one JSON array, not JSON Lines: write one JSON object "
                            "per line"),
    "pair-json-array-one-line": Case("a JSON array on one line is one JSON array too",
                                     pairs(f"[{nli_row('a')}, {nli_row('b')}]"),
                                     at("dev.jsonl", 1), "looks like one JSON array"),
    "pair-json-pretty": Case("objects spread over several lines are not JSON Lines",
                             pairs("{", '  "pairID": "a",', '  "gold_label": "neutral"', "}"),
                             at("dev.jsonl", 1), "write each JSON object on one line"),
    "pair-not-utf8": Case("bytes that are not UTF-8 name their line",
                          pairs(nli_row("a"), nli_row("b").encode().replace(b"pain", b"p\xffin")),
                          at("dev.jsonl", 2), "not UTF-8"),
    "pair-empty-split": Case("a file of blank lines is an empty split", pairs("", "  "),
                             at("dev.jsonl"), "no examples"),
    # --- labels checked against the training split (prepare_task) ---
    "type-unseen-in-train": Case("an entity type absent from train names file and line",
                                 prepare(lambda tmp: ner_task(tmp / "raw", devel=tsv(
                                     "a/O b/O", "c/B-Disease d/B-Gene"))),
                                 at("raw/devel.tsv", 5),
                                 "unknown label 'B-Gene': not in the labels of the training"),
    "pair-label-unseen-in-train": Case("a pair label absent from train names file and line",
                                       prepare(lambda tmp: pair_task(tmp / "raw", {
                                           "train.jsonl": ["yes", "no"], "dev.jsonl": ["yes"],
                                           "test.jsonl": ["no", "maybe"]}), "qa"),
                                       at("raw/test.jsonl", 2), "unknown label 'maybe'"),
    "label-outside-config": Case("a train label outside the configured labels is refused",
                                 prepare(lambda tmp: pair_task(
                                     tmp / "raw", labels=["entailment", "neutral"]), "nli"),
                                 at("raw/train.jsonl", 3), "not in the configured labels"),
    # --- Hugging Face datasets: dataset[split] and row ---
    "hf-token-tag-mismatch": Case("token and tag lists of different lengths name the row",
                                  hf_ner([(["a", "b"], [0, 0]), (["c", "d"], [1])]),
                                  row_of("test", 1), "token/tag mismatch: 2 tokens, 1 tags"),
    "hf-empty-sentence": Case("a sentence without tokens is refused",
                              hf_ner([(["a"], [0]), ([], [])]), row_of("test", 1),
                              "empty sentence"),
    "hf-empty-token": Case("an empty token is refused", hf_ner([(["a"], [0]), (["a", ""], [0, 0])]),
                           row_of("test", 1), "empty token"),
    "hf-duplicate-id": Case("a duplicate id names both rows",
                            hf_duplicate_ids,
                            row_of("train", 1), "duplicate id 'same' (first seen at row 0)"),
    "hf-missing-field": Case("a missing column names the field and the columns there are",
                             hf_ner(GOOD_NER, {"tokens": "words", "tags": "ner_tags"}),
                             lambda tmp: f"{tmp / 'dd'}[test]: ", "missing field 'words'"),
    "hf-missing-split": Case("a split the dataset lacks names the splits it has",
                             hf_ner(GOOD_NER, split="validation"), at("dd"),
                             "no split 'validation' (splits: train, test)"),
    "hf-empty-split": Case(
        "an empty parquet split is an empty split",
        hf_empty_parquet,
        lambda tmp: f"{tmp / 'pq'}[train]: ",
        "no examples (the split is empty)",
    ),
    "hf-no-files": Case(
        "a directory without data for the split says what it looked for",
        lambda tmp: (tmp / "empty").mkdir() or read_hf(tmp / "empty", "train", "ner", NER_FIELDS),
        at("empty"),
        "no saved dataset or parquet files for split 'train'",
    ),
    "hf-missing-dataset": Case("a missing dataset directory is named",
                               lambda tmp: read_hf(str(tmp / "absent"), "train", "ner",
                                                   NER_FIELDS),
                               at("absent"), "dataset directory is missing"),
}  # fmt: skip


def message_of(case: Case, tmp: Path) -> str:
    try:
        problems = case.call(tmp)
    except BioprobeError as exc:
        return str(exc)
    assert isinstance(problems, list) and len(problems) == 1, f"no single error: {problems!r}"
    return problems[0]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_error_naming_where(name, tmp_path):
    case = CASES[name]
    message = message_of(case, tmp_path)
    assert message.startswith(case.where(tmp_path)), f"{case.proves}: {message}"
    assert case.says in message, f"{case.proves}: {message}"
    assert "\n" not in message and "Traceback" not in message  # one line


def test_a_failing_split_writes_nothing_and_keeps_what_was_there(tmp_path):
    """No partial output: a bad test split leaves the previous prepare_task outputs untouched."""
    out = tmp_path / "out"
    prepare_task(ner_task(tmp_path / "raw"), out, "toy")
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    bad = ner_task(tmp_path / "raw", train=tsv("new/B-Disease sentence/O"), test="bad line\n")
    with pytest.raises(InputError, match=r"test\.tsv:1: token/tag mismatch"):
        prepare_task(bad, out, "toy")
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS  # no temporary files left
    with pytest.raises(InputError):
        prepare_task(bad, tmp_path / "fresh", "toy")
    assert not (tmp_path / "fresh").exists()


# --- over-long sentences: not an error, but counted in the metrics and said in the log ---


@pytest.fixture(scope="module")
def long_task(tmp_path_factory):
    """A prepared NER and pair task whose first example is far longer than max_length 16."""
    root = tmp_path_factory.mktemp("long")
    long_sentence = " ".join(f"cancer{i}/O" for i in range(40))
    ner = ner_task(root / "ner-raw", train=tsv(long_sentence, "aspirin/B-Chemical gout/B-Disease"),
                   devel=tsv(long_sentence, "gout/B-Disease"),
                   test=tsv(long_sentence, "lithium/B-Chemical"))  # fmt: skip
    prepare_task(ner, root / "ner", "long-ner")
    pairs_cfg = pair_task(root / "pair-raw")
    for name in PAIR_SPLITS.values():
        path = root / "pair-raw" / name
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        rows[0]["sentence1"] = " ".join(["febrile"] * 60)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepare_task(pairs_cfg, root / "pair", "long-pair")
    return root


@pytest.mark.parametrize("task", ["ner", "pair"])
def test_truncation_is_counted_in_the_eval_json_and_logged(task, long_task, tiny_bert_dir, caplog):
    from bioprobe.models import resolve_model
    from bioprobe.pipeline.jobs import job_at
    from bioprobe.settings import TrainingSettings
    from bioprobe.training.evaluate import evaluate

    training = {"max_length": 16, "pair_truncation": "longest_first", "eval_batch_size": 8}
    spec = resolve_model("tiny-bert", {"source": str(tiny_bert_dir)})
    with caplog.at_level(logging.WARNING):
        result = evaluate(job_at(long_task / task, spec, 1, location=tiny_bert_dir),
                          TrainingSettings.from_config(training))  # fmt: skip
    for split in ("validation", "test"):
        assert result["truncation"][split]["truncated_examples"] == 1, result["truncation"]
    if task == "ner":
        assert result["truncation"]["test"]["truncated_words"] > 0
    warnings = [r.getMessage() for r in caplog.records if "were truncated" in r.getMessage()]
    assert len(warnings) == 2 and "max_length=16" in warnings[0]
