"""What the report adds to the tables: chance levels (hand-computed) and tables as HTML pages."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bioprobe.chance import (
    CHANCE_COLUMNS,
    chance_levels,
    chance_rows,
    chance_value,
    task_chance,
)
from bioprobe.plotting.htmltable import table_html, write_table_html


def test_chance_levels_hand_computed():
    # 6 units, K = 3 classes (one absent): shares 4/6, 2/6, 0
    levels = chance_levels(["a"] * 4 + ["b"] * 2, ["a", "b", "c"])
    assert levels["accuracy"] == pytest.approx(4 / 6)  # majority class
    assert levels["micro_f1"] == levels["accuracy"]
    # uniform random over 3 classes: F1_c = 2p / (3p + 1): a 4/9, b 2/9... averaged over K = 3
    f1 = [2 * p / (3 * p + 1) for p in (4 / 6, 2 / 6, 0)]
    assert levels["macro_f1"] == pytest.approx(sum(f1) / 3)
    # balanced classes: macro-F1 of random guessing is 1/K
    assert chance_levels(list("abcd") * 5, list("abcd"))["macro_f1"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="not among the classes"):
        chance_levels(["a", "z"], ["a", "b"])


def test_positive_micro_f1_chance_is_the_best_constant_positive_class():
    """ChemProt-like: 10 units, 5 negative, CPR:3 x3, CPR:4 x2. Predicting CPR:3 everywhere:
    3 true positives of 10 predictions against 5 gold positives: P 0.3, R 0.6, F1 0.4 =
    2 * 3 / (10 + 5); CPR:4 everywhere scores 4/15. Checked against the metric itself."""
    from bioprobe.metrics import positive_class_scores

    gold = ["false"] * 5 + ["CPR:3"] * 3 + ["CPR:4"] * 2
    classes = ["false", "CPR:3", "CPR:4"]
    levels = chance_levels(gold, classes, negative="false")
    assert levels["positive_micro_f1"] == pytest.approx(0.4)
    constant = positive_class_scores(gold, ["CPR:3"] * len(gold), "false")["positive_micro_f1"]
    assert levels["positive_micro_f1"] == pytest.approx(constant)
    # GAD-like, balanced binary: "an association" everywhere scores 2/3
    assert chance_levels(list("0101"), ["0", "1"], "0")["positive_micro_f1"] == pytest.approx(2 / 3)
    assert "positive_micro_f1" not in chance_levels(list("0101"), ["0", "1"])


def test_chance_rows_only_where_a_value_exists():
    rows = pd.DataFrame(chance_rows("sim", "test", [0.5, 2.0, 4.1], []), columns=CHANCE_COLUMNS)
    assert set(rows["metric"]) == {"pearson", "spearman"}  # scores: no class metric
    assert (rows["value"] == 0).all()
    labels = pd.DataFrame(chance_rows("nli", "test", ["x", "y", "y"], ["x", "y"]))
    assert set(labels["metric"]) == {"pearson", "spearman", "accuracy", "micro_f1", "macro_f1"}
    assert chance_value(labels, "nli", "test", "accuracy") == pytest.approx(2 / 3)
    assert chance_value(labels, "nli", "validation", "accuracy") is None
    assert chance_value(labels, "nli", "test", "entity_f1") is None
    assert chance_value(None, "any", "test", "pearson") == 0.0


def test_task_chance_reads_the_units_of_a_dump(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "test.units.json").write_text(json.dumps({"labels": ["O", "O", "O", "B-X"]}))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": ["O", "B-X", "I-X"]}))
    scores = tmp_path / "scores"  # a similarity task's units: scores, no labels
    scores.mkdir()
    (scores / "test.units.json").write_text(json.dumps({"scores": [0.5, 3.0]}))
    (tmp_path / "no_labels.json").write_text(json.dumps({"task_type": "similarity"}))
    table = task_chance(
        {"ner": dump, "sim": scores},
        {"ner": labels, "sim": tmp_path / "no_labels.json"},
        ["test", "validation"],
    )
    assert set(table.loc[table["task"] == "sim", "metric"]) == {"pearson", "spearman"}
    table = table[table["task"] == "ner"]
    assert set(table["split"]) == {"test"}  # the dump has no validation units
    got = table.set_index("metric")["value"]
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["macro_f1"] == pytest.approx((2 * 0.75 / 3.25 + 2 * 0.25 / 1.75) / 3)


def test_table_page_has_its_description_and_readable_numbers(tmp_path):
    df = pd.DataFrame(
        {"task": ["a", "b<i>"], "size": [10, 100], "value": [0.123456789, float("nan")]}
    )
    tsv = tmp_path / "t.tsv"
    df.to_csv(tsv, sep="\t", index=False)
    out = write_table_html(
        tsv, tmp_path / "t.html", title="results/tables/t.tsv", caption_rst="Rows ``per run``."
    )
    page = out.read_text(encoding="utf-8")
    assert 'literal">per run</tt>' in page  # the caption's rst, rendered
    assert '<td class="num">0.1235</td>' in page  # four significant digits, right-aligned
    assert '<td class="num">10</td>' in page
    assert "b&lt;i&gt;" in page  # text is escaped
    assert "<script" not in page
    assert "rows; the full table" not in page


def test_long_table_says_what_it_leaves_out():
    df = pd.DataFrame({"x": range(10)})
    page = table_html(df, title="t", description_html="", source="results/tables/t.tsv", max_rows=3)
    assert page.count("<tr>") == 1 + 3  # header and three rows
    assert "The first 3 of 10 rows" in page and "results/tables/t.tsv" in page
