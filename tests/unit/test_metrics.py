"""Downstream and probe metrics against hand-computed values."""

import pytest

from bioprobe.metrics import classification_scores, io_to_iob2, ner_scores


def test_entity_level_strict_iob2_by_hand():
    gold = [["B-Dis", "I-Dis", "O", "B-Chem"], ["O", "B-Dis", "O"]]
    pred = [["B-Dis", "I-Dis", "O", "O"], ["O", "B-Dis", "I-Dis"]]
    s = ner_scores(gold, pred)
    # gold: Dis(0-1), Chem(3), Dis(s2 1). predicted: Dis(0-1) right, Dis(s2 1-2) wrong span
    assert s["entity_precision"] == pytest.approx(1 / 2)
    assert s["entity_recall"] == pytest.approx(1 / 3)
    assert s["entity_f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert s["entity_f1/Chem"] == 0.0
    assert s["entity_f1/Dis"] == pytest.approx(0.5)  # P=1/2, R=1/2


def test_strict_mode_rejects_orphan_inside_tag():
    # strict IOB2: an I- without a B- is not an entity (lenient conlleval would count it)
    s = ner_scores([["B-Dis", "I-Dis"]], [["I-Dis", "I-Dis"]])
    assert s["entity_precision"] == 0.0
    assert s["entity_f1"] == 0.0


def test_token_level_type_scores_by_hand():
    gold = [["B-A", "I-A", "O", "B-B"]]
    pred = [["B-A", "B-A", "B-B", "O"]]
    s = ner_scores(gold, pred)
    # types gold A A O B, pred A A B O -> A: P=R=1 (F1 1); B: tp 0 (F1 0); macro 0.5
    # micro over {A,B}: tp=2, fp=1 (O->B), fn=1 (B->O): P=R=2/3
    assert s["token_macro_f1"] == pytest.approx(0.5)
    assert s["token_micro_f1"] == pytest.approx(2 / 3)


def test_collapsed_type_tags_are_read_as_runs():
    assert io_to_iob2(["A", "A", "O", "A", "B", "B"]) == ["B-A", "I-A", "O", "B-A", "B-B", "I-B"]
    s = ner_scores([["A", "A", "O"]], [["A", "A", "O"]])
    assert s["entity_f1"] == 1.0


def test_classification_scores_by_hand():
    s = classification_scores(["a", "b", "a", "c"], ["a", "a", "a", "c"])
    assert s["accuracy"] == pytest.approx(0.75)
    # F1: a = 2*(2/3*1)/(2/3+1) = 0.8, b = 0, c = 1 -> macro 0.6
    assert s["macro_f1"] == pytest.approx(0.6)
    assert s["micro_f1"] == pytest.approx(0.75)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        ner_scores([["O"]], [["O", "O"]])
    with pytest.raises(ValueError):
        classification_scores(["a"], ["a", "b"])


@pytest.mark.parametrize("seed", range(5))
def test_f1_counts_agree_with_scikit_learn(seed):
    # the per-class counts must give scikit-learn's f1_score (zero_division=0), missing and
    # predicted-only classes included
    import numpy as np
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    names = np.array(["O", "B-A", "I-A", "B-B", "I-B", "B-C"])
    gold = rng.choice(names[:5], size=(40, 7), p=[0.6, 0.1, 0.1, 0.1, 0.1])
    pred = rng.choice(names, size=(40, 7))
    s = classification_scores(gold.ravel(), pred.ravel())
    assert s["macro_f1"] == pytest.approx(f1_score(gold.ravel(), pred.ravel(), average="macro"))
    assert s["micro_f1"] == pytest.approx(f1_score(gold.ravel(), pred.ravel(), average="micro"))
    t = ner_scores([list(r) for r in gold], [list(r) for r in pred])
    g_types, p_types = [[n.split("-")[-1] for n in a.ravel()] for a in (gold, pred)]
    types = sorted(set(g_types) - {"O"})
    for avg in ("macro", "micro"):
        want = f1_score(g_types, p_types, labels=types, average=avg, zero_division=0)
        assert t[f"token_{avg}_f1"] == pytest.approx(want)


def test_token_scores_alone_skip_entities():
    gold = [["B-A", "I-A", "O", "B-B"]]
    pred = [["B-A", "B-A", "B-B", "O"]]
    alone = ner_scores(gold, pred, entities=False)
    assert not any(k.startswith("entity") for k in alone)
    assert alone == {k: v for k, v in ner_scores(gold, pred).items() if k.startswith("token")}
