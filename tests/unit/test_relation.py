"""The relation task type (BLURB's ChemProt, DDI, GAD): reading, labels, encoding, the BLURB
score, entity pooling, dumps and probes."""

from __future__ import annotations

import logging
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from transformers import AutoModel

from bioprobe import tasks
from bioprobe.analysis.extract import DumpSettings, extract
from bioprobe.analysis.pooling import entity_pair, pool_relation
from bioprobe.config import validate_config
from bioprobe.data.demo import RELATION_FILES, task_config, write_demo_relation
from bioprobe.data.prepare import prepare_task
from bioprobe.data.readers import read_hf, read_tsv
from bioprobe.errors import ConfigError, InputError
from bioprobe.metrics import positive_class_scores
from bioprobe.probing import ProbeData
from bioprobe.settings import ProbeSettings
from bioprobe.tasks.relation import encode, entity_words, words
from bioprobe.tokenization import load_tokenizer

RELATION = tasks.get("relation")
GAD_FIELDS = {"text": "sentence"}
CHEMPROT_FIELDS = {"id": "id", "text": "sentence"}
CHEMPROT_COLUMNS = ["id", "sentence", "label"]
CHEMPROT_LABELS = ["false", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"]


def write(path, lines: list[str]):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- reading ----------------------------------------------------------------------------------


def test_gad_tsv_with_a_header(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        [
            "index\tsentence\tlabel",
            "0\tThe @GENE$ variant is associated with @DISEASE$.\t1",
            "1\t@DISEASE$ was not linked to @GENE$ in this cohort.\t0",
        ],
    )
    records = read_tsv(path, "relation", GAD_FIELDS, split="train")
    assert [r["id"] for r in records] == ["train-000000", "train-000001"]
    assert [r["label"] for r in records] == ["1", "0"]
    assert records[1]["text"] == "@DISEASE$ was not linked to @GENE$ in this cohort."


def test_chemprot_tsv_named_by_columns(tmp_path):
    path = write(
        tmp_path / "dev.tsv",
        [
            "10064839.T56.T49\tBinding of @CHEMICAL$ to @GENE$ in mice.\tfalse",
            "10064839.T50.T56\tThe @CHEM-GENE$ complex was inhibited.\tCPR:4",
        ],
    )
    records = read_tsv(path, "relation", CHEMPROT_FIELDS, CHEMPROT_COLUMNS, labels=CHEMPROT_LABELS)
    assert [(r["id"], r["label"]) for r in records] == [
        ("10064839.T56.T49", "false"),
        ("10064839.T50.T56", "CPR:4"),
    ]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("1\tBinding of @CHEMICAL$ to @GENE$.\tCPR:7", "unknown label 'CPR:7'"),
        ("1\t   \tfalse", "empty text in field 'sentence'"),
        ("1\tBinding of @CHEMICAL$ to @GENE$.", "2 tab-separated cells, expected 3"),
    ],
)
def test_a_bad_row_is_named_by_file_and_line(tmp_path, line, problem):
    path = write(tmp_path / "dev.tsv", ["0\tThe @CHEMICAL$ binds @GENE$.\tCPR:3", line])
    with pytest.raises(InputError) as caught:
        read_tsv(path, "relation", CHEMPROT_FIELDS, CHEMPROT_COLUMNS, labels=CHEMPROT_LABELS)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert problem in str(caught.value)


def test_a_hugging_face_dataset_with_classlabel_names(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    features = datasets.Features(
        {
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["DDI-false", "DDI-effect"]),
        }
    )
    data = {"sentence": ["@DRUG$ raises @DRUG$ levels.", ""], "label": [1, 0]}
    datasets.Dataset.from_dict(data, features=features).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(InputError) as caught:
        read_hf(tmp_path, "train.parquet", "relation", {"text": "sentence"})
    assert str(caught.value).startswith(f"{tmp_path}[train.parquet]: row 1: empty text")
    data["sentence"][1] = "@DRUG$ and @DRUG$ were given together."
    datasets.Dataset.from_dict(data, features=features).to_parquet(tmp_path / "train.parquet")
    records = read_hf(tmp_path, "train.parquet", "relation", {"text": "sentence"}, split="train")
    assert [(r["id"], r["label"]) for r in records] == [
        ("train-000000", "DDI-effect"),
        ("train-000001", "DDI-false"),
    ]


def test_a_sentence_without_placeholders_is_read_not_rejected(tmp_path):
    path = write(tmp_path / "train.tsv", ["index\tsentence\tlabel", "0\tNo entity here.\t0"])
    assert read_tsv(path, "relation", GAD_FIELDS)[0]["text"] == "No entity here."


# --- config and labels ------------------------------------------------------------------------


def _config(**task) -> dict:
    entry = {"type": "relation", "format": "tsv", "path": "x", "fields": GAD_FIELDS}
    entry["splits"] = {"train": "a", "validation": "b", "test": "c"}
    return {"tasks": {"gad": {**entry, **task}}, "models": {"m": {"source": "x"}}}


def test_a_relation_task_must_name_its_negative_label():
    with pytest.raises(ConfigError) as caught:
        validate_config(_config())
    assert caught.value.key == "tasks.gad.negative_label"


def test_the_negative_label_must_be_one_of_the_labels_and_becomes_class_0():
    with pytest.raises(ConfigError) as caught:
        validate_config(_config(negative_label="false", labels=["CPR:3", "CPR:4"]))
    assert caught.value.key == "tasks.gad.labels" and "'false'" in str(caught.value)
    cfg = validate_config(_config(negative_label="false", labels=["CPR:3", "false", "CPR:4"]))
    task = cfg["tasks"]["gad"]
    assert RELATION.config_labels(task, "k") == ["false", "CPR:3", "CPR:4"]


def test_labels_from_train_put_the_negative_first_and_must_contain_it():
    records = [{"label": label} for label in ("DDI-int", "DDI-false", "DDI-advise")]
    labels = RELATION.labels_from_train(records, {"negative_label": "DDI-false"})
    assert labels == ["DDI-false", "DDI-advise", "DDI-int"]
    with pytest.raises(ConfigError, match="'false' is not among the training split"):
        RELATION.labels_from_train(records, {"negative_label": "false"})


def test_prepared_demo_corpus_records_the_negative_label(tmp_path):
    write_demo_relation(tmp_path / "raw", n_train=30, n_validation=10, n_test=10)
    cfg = validate_config(
        {
            "tasks": {"r": task_config("relation", str(tmp_path / "raw"))},
            "models": {"m": {"source": "x"}},
        }
    )
    meta = prepare_task(cfg["tasks"]["r"], tmp_path / "data", "r")
    assert meta["labels"] == ["0", "1"] and meta["negative_label"] == "0"
    assert meta["counts"] == {"train": 30, "validation": 10, "test": 10}


# --- words, entities, encoding ----------------------------------------------------------------


def test_placeholders_become_words_of_their_own():
    text = "Mutations in @GENE$, not (@DISEASE$), cause @GENE$-mediated harm."
    assert words(text) == [
        "Mutations", "in", "@GENE$", ",", "not", "(", "@DISEASE$", "),", "cause", "@GENE$",
        "-mediated", "harm.",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "sentence, slots",
    [
        # ordered by placeholder name: disease before gene whatever their order in the text
        (["@GENE$", "causes", "@DISEASE$"], (2, 0)),
        (["@DISEASE$", "and", "@GENE$"], (0, 2)),
        (["@CHEMICAL$", "binds", "@GENE$"], (0, 2)),
        (["@DRUG$", "with", "@DRUG$"], (0, 2)),  # DDI: sentence order
        (["the", "@CHEM-GENE$", "complex"], (1, 1)),  # one placeholder for both entities
        (["only", "@GENE$", "here"], None),
        (["no", "entity"], None),
    ],
)
def test_entity_words(sentence, slots):
    assert entity_words(sentence) == slots


@pytest.fixture(scope="module")
def tokenizers(tiny_bert_dir, tiny_gpt2_dir, tiny_biogpt_dir):
    return {
        "bert": load_tokenizer(str(tiny_bert_dir)),
        "gpt2": load_tokenizer(str(tiny_gpt2_dir)),
        "biogpt": load_tokenizer(str(tiny_biogpt_dir)),
    }


@pytest.mark.parametrize("family", ["bert", "gpt2", "biogpt"])
def test_encode_locates_each_placeholder_at_its_first_sub_token(tokenizers, family):
    tok = tokenizers[family]
    record = {"text": "The @GENE$ mutation increases the risk of breast cancer (@DISEASE$)."}
    enc = encode(tok, record, SimpleNamespace(max_length=64))
    sentence = words(record["text"])
    disease, gene = sentence.index("@DISEASE$"), sentence.index("@GENE$")
    first = {w: t for t, w in reversed(list(enumerate(_word_index(tok, sentence))))}
    assert enc.entities == (first[disease], first[gene])
    for position, word in zip(enc.entities, ("@DISEASE$", "@GENE$"), strict=True):
        alone = tok(word, add_special_tokens=False)["input_ids"]
        assert enc.input_ids[position] == alone[0]
    assert enc.truncated_words == 0


def _word_index(tok, sentence):
    from bioprobe.tokenization import encode_words

    return encode_words(tok, sentence, 64).word_index


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_a_placeholder_cut_off_by_truncation_leaves_no_entities(tokenizers, family):
    record = {"text": "The @GENE$ mutation increases the risk of breast cancer in @DISEASE$."}
    enc = encode(tokenizers[family], record, SimpleNamespace(max_length=10))
    assert enc.truncated_words > 0 and enc.entities is None


def test_an_overlapping_placeholder_gives_one_position_twice(tokenizers):
    tok = tokenizers["bert"]
    enc = encode(tok, {"text": "The @CHEM-GENE$ complex."}, SimpleNamespace(max_length=32))
    start = _word_index(tok, ["The", "@CHEM-GENE$", "complex."]).index(1)
    assert enc.entities == (start, start)


# --- the BLURB score --------------------------------------------------------------------------


def test_predicting_the_negative_class_everywhere_scores_zero():
    gold = ["false", "CPR:3", "CPR:4", "false"]
    scores = positive_class_scores(gold, ["false"] * 4, "false")
    assert scores == {"positive_precision": 0.0, "positive_recall": 0.0, "positive_micro_f1": 0.0}


def test_a_mixed_case_by_hand():
    gold = ["false", "CPR:3", "CPR:3", "CPR:4", "false", "CPR:9"]
    pred = ["CPR:3", "CPR:3", "false", "CPR:4", "false", "CPR:4"]
    # tp = 2 (CPR:3 at 1, CPR:4 at 3); predicted positives 4; gold positives 4
    scores = positive_class_scores(gold, pred, "false")
    assert scores["positive_precision"] == pytest.approx(2 / 4)
    assert scores["positive_recall"] == pytest.approx(2 / 4)
    assert scores["positive_micro_f1"] == pytest.approx(0.5)
    # a correct negative is no hit: all-correct negatives and one wrong positive score 0
    assert positive_class_scores(["0", "0", "1"], ["0", "0", "0"], "0")["positive_recall"] == 0


def test_the_score_is_scikit_learns_micro_f1_over_the_positive_labels():
    rng = np.random.default_rng(0)
    for _ in range(20):
        gold, pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
        expected = f1_score(gold, pred, labels=[1, 2, 3], average="micro", zero_division=0)
        assert positive_class_scores(gold, pred, 0)["positive_micro_f1"] == pytest.approx(expected)


def test_task_scores_read_the_negative_class_as_class_0():
    labels = ["false", "CPR:3", "CPR:4"]
    gold = ("false", "CPR:3", "CPR:4", "CPR:4")
    records = [{"id": str(i), "label": g} for i, g in enumerate(gold)]
    scores = RELATION.score(labels, records, [1, 1, 0, 2])
    assert scores["accuracy"] == pytest.approx(0.5)
    assert scores["positive_micro_f1"] == pytest.approx(2 * 2 / (3 + 3))
    compute = RELATION.compute_metrics(labels)
    ids = compute(
        SimpleNamespace(label_ids=np.array([0, 1, 2, 2]), predictions=np.array([1, 1, 0, 2]))
    )
    assert ids["positive_micro_f1"] == pytest.approx(scores["positive_micro_f1"])


# --- pooling ----------------------------------------------------------------------------------


def _hidden() -> tuple[torch.Tensor, torch.Tensor]:
    hidden = torch.arange(2 * 3 * 4 * 2, dtype=torch.float32).reshape(2, 3, 4, 2)  # [L+1, B, T, H]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]])
    return hidden, mask


@pytest.mark.parametrize("is_decoder, fallback_token", [(False, 0), (True, 1)])
def test_entity_pooling_concatenates_the_two_entity_starts(is_decoder, fallback_token):
    hidden, mask = _hidden()
    positions = torch.tensor([[3, 1], [2, 2], [-1, -1]])
    out = entity_pair(hidden, mask, positions, is_decoder)
    assert out.shape == (2, 3, 4)
    for layer in range(2):
        assert torch.equal(out[layer, 0], torch.cat([hidden[layer, 0, 3], hidden[layer, 0, 1]]))
        assert torch.equal(out[layer, 1], torch.cat([hidden[layer, 1, 2], hidden[layer, 1, 2]]))
        # no placeholders: the sentence vector (CLS, or a decoder's last real token) twice
        sentence = hidden[layer, 2, fallback_token]
        assert torch.equal(out[layer, 2], torch.cat([sentence, sentence]))


def test_an_entity_position_on_padding_is_an_error():
    hidden, mask = _hidden()
    with pytest.raises(ValueError, match="outside the example's real tokens"):
        entity_pair(hidden, mask, torch.tensor([[0, 1], [3, 0], [0, 1]]))


def test_cls_and_mean_relation_pooling():
    hidden, mask = _hidden()
    positions = torch.full((3, 2), -1)
    assert torch.equal(pool_relation(hidden, mask, positions, "cls"), hidden[:, :, 0])
    last = pool_relation(hidden, mask, positions, "cls", is_decoder=True)
    assert torch.equal(last[:, 1], hidden[:, 1, 2])
    mean = pool_relation(hidden, mask, positions, "mean")
    assert torch.allclose(mean[:, 2], hidden[:, 2, :2].mean(dim=1))
    with pytest.raises(ValueError, match="entity, cls or mean"):
        pool_relation(hidden, mask, positions, "first")


# --- dumps and probes -------------------------------------------------------------------------


@pytest.mark.parametrize("pooling, width", [("entity", 64), ("cls", 32)])
def test_dump_counts_sentences_pooled_at_cls_for_want_of_placeholders(
    tiny_bert_dir, tmp_path, caplog, one_torch_thread, pooling, width
):
    tokenizer = load_tokenizer(str(tiny_bert_dir))
    model = AutoModel.from_pretrained(tiny_bert_dir, attn_implementation="eager")
    texts = [
        "The @GENE$ mutation increases the risk of @DISEASE$.",
        "No placeholder in this sentence.",
        "@DISEASE$ was not associated with @GENE$ in patients.",
    ]
    records = [{"id": f"r{i}", "text": t, "label": str(i % 2)} for i, t in enumerate(texts)]
    settings = DumpSettings(
        batch_size=2, attention_max_examples=2, dtype="float32", relation_pooling=pooling
    )
    with caplog.at_level(logging.WARNING, logger="bioprobe.relation"):
        meta = extract(
            model=model,
            tokenizer=tokenizer,
            task_type="relation",
            splits={"test": records},
            settings=settings,
            out_dir=tmp_path / "dump",
            provenance={"variant": "pretrained"},
        )
    stats = meta["splits"]["test"]
    hidden = np.load(tmp_path / "dump" / "test.hidden.npy")
    assert hidden.shape == (3, 3, width)
    assert meta["attention"]["n_examples"] == 2
    if pooling == "entity":
        assert stats["placeholder_fallbacks"] == 1
        assert "1 of 3 sentences lack their two entity placeholders" in caplog.text
        half = width // 2  # the fallback row: its cls vector twice
        assert np.array_equal(hidden[:, 1, :half], hidden[:, 1, half:])
    else:
        assert stats["placeholder_fallbacks"] == 0 and "placeholders" not in caplog.text


def test_probe_rows_carry_the_blurb_score_and_its_selectivity():
    rng = np.random.default_rng(0)
    y_fit, y_score = rng.integers(0, 3, 120), rng.integers(0, 3, 60)
    names = ["false", "CPR:3", "CPR:4"]

    def data(y):  # layer 1 separates the classes, layer 0 is noise
        noise = rng.normal(size=(len(y), 4))
        return ProbeData(np.stack([noise, noise + 5 * np.eye(4)[y]]), y, names)

    settings = ProbeSettings(linear={"C": 1.0, "max_iter": 100})  # 3 control draws
    rows = RELATION.probe(data(y_fit), data(y_score), "linear", settings, seed=1, threads=1)
    got = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    assert got[1, "task", "positive_micro_f1"] > 0.9
    assert got[1, "task", "selectivity_positive_micro_f1"] == pytest.approx(
        got[1, "task", "positive_micro_f1"] - got[1, "control", "positive_micro_f1"]
    )
    assert (0, "control", "positive_micro_f1") in got and (1, "task", "macro_f1") in got


# --- the demo corpus --------------------------------------------------------------------------


def test_demo_corpus_is_deterministic_gad_shaped_and_learnable(tmp_path):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    write_demo_relation(tmp_path / "a", seed=3)
    write_demo_relation(tmp_path / "b", seed=3)
    write_demo_relation(tmp_path / "c", seed=4)
    for name in RELATION_FILES.values():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.tsv").read_bytes() != (
        tmp_path / "c" / "train.tsv"
    ).read_bytes()
    split = {
        s: read_tsv(tmp_path / "a" / f, "relation", GAD_FIELDS) for s, f in RELATION_FILES.items()
    }
    assert {s: len(r) for s, r in split.items()} == {"train": 400, "validation": 150, "test": 150}
    for records in split.values():
        assert Counter(r["label"] for r in records) == {
            "0": len(records) // 2,
            "1": len(records) // 2,
        }
        assert all(entity_words(words(r["text"])) is not None for r in records)
    model = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=1000))
    model.fit([r["text"] for r in split["train"]], [r["label"] for r in split["train"]])
    assert (
        model.score([r["text"] for r in split["test"]], [r["label"] for r in split["test"]]) > 0.9
    )
