"""The default demo's shipped data (data/demo/): licence and attribution files, the counts its
README states, readable with the demo's own task definitions, and reproducible from the shared
corpora by `bioprobe.data.demo_sample`."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bioprobe.config import validate_config
from bioprobe.data import prepare_task, read_bio_tsv
from bioprobe.data.demo_sample import (
    DEFAULT_COUNTS,
    GAD_ENTITIES,
    GAD_FILES,
    GAD_HEADER,
    LICENSE_NAME,
    NCBI_FILES,
    _stratified,
    write_sample,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
SHARED = ROOT.parent / "shared" / "data"
CORPORA = {"ncbi_disease": NCBI_FILES, "gad": GAD_FILES}
NCBI_COMMIT = "df0df02fae6dbb87d88ffcf323b9096528f06f84"
GAD_COMMIT = "bc7c3667c786236252ba5b26b3b921197465b7a3"
CITATIONS = {
    "ncbi_disease": ["Doğan", "10.1016/j.jbi.2013.12.006", NCBI_COMMIT],
    "gad": ["Bravo", "10.1186/s12859-015-0472-9", "10.1093/bioinformatics/btz682", GAD_COMMIT],
}


def readme_rows(corpus: str) -> dict[str, list[str]]:
    """The count table rows of data/demo/README.md for `corpus`, by split: its cells after the
    corpus name (split, file, counts...)."""
    rows = {}
    for line in (DEMO / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == corpus and len(cells) > 3:
            rows[cells[1]] = cells[2:]
    return rows


def demo_tasks() -> dict[str, dict]:
    """The default config's tasks (validated), by the corpus folder they read."""
    config = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    return {Path(t["path"]).name: (task_id, t) for task_id, t in config["tasks"].items()}


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_licence_and_attribution_are_shipped(corpus):
    licence = (DEMO / corpus / LICENSE_NAME).read_text(encoding="utf-8")
    assert licence.startswith("Attribution 4.0 International")
    assert "Creative Commons Attribution 4.0 International Public License" in licence
    readme = (DEMO / corpus / "README.md").read_text(encoding="utf-8")
    for needle in ["CC BY 4.0", "Changes:", *CITATIONS[corpus]]:
        assert needle in readme, needle


def test_the_default_config_reads_the_shipped_sample():
    tasks = demo_tasks()
    assert set(tasks) == set(CORPORA)
    for corpus, (_, task) in tasks.items():
        assert task["path"] == f"data/demo/{corpus}"
        assert dict(task["splits"]) == CORPORA[corpus]


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_sample_prepares_with_the_config_and_matches_the_readme(corpus, tmp_path):
    task_id, task = demo_tasks()[corpus]
    meta = prepare_task({**task, "path": str(DEMO / corpus)}, tmp_path, task_id)
    rows = readme_rows(corpus)
    assert set(rows) == {"train", "validation", "test"}
    for split, cells in rows.items():
        assert cells[0] == CORPORA[corpus][split]
        assert meta["counts"][split] == int(cells[1]) == DEFAULT_COUNTS[corpus][split]


def test_ncbi_counts_match_the_readme():
    for split, (name, sentences, tokens, mentions, with_mention, _) in readme_rows(
        "ncbi_disease"
    ).items():
        records = read_bio_tsv(DEMO / "ncbi_disease" / name, split=split)
        tags = [t for r in records for t in r["tags"]]
        assert len(records) == int(sentences)
        assert len(tags) == int(tokens)
        assert sum(t == "B-Disease" for t in tags) == int(mentions)
        assert sum("B-Disease" in r["tags"] for r in records) == int(with_mention)
        assert set(tags) <= {"O", "B-Disease", "I-Disease"}
        assert max(len(r["tokens"]) for r in records) <= 40


def test_gad_counts_match_the_readme():
    for _, (name, sentences, zeros, ones, _) in readme_rows("gad").items():
        lines = (DEMO / "gad" / name).read_text(encoding="utf-8").splitlines()
        assert lines[0] == GAD_HEADER
        rows = [line.split("\t") for line in lines[1:]]
        assert len(rows) == int(sentences)
        assert Counter(r[2] for r in rows) == {"0": int(zeros), "1": int(ones)}
        assert all(len(r[1].split()) <= 40 and all(e in r[1] for e in GAD_ENTITIES) for r in rows)
        assert len({r[0] for r in rows}) == len(rows)  # source indices, no row twice


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared corpora (../shared/data) are absent")
def test_sample_is_redrawn_byte_for_byte_from_the_shared_corpora(tmp_path):
    written = write_sample(SHARED, tmp_path)
    assert len(written) == 8  # 2 corpora x (3 splits + licence)
    for name, path in written.items():
        assert path.read_bytes() == (DEMO / name).read_bytes(), name


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared corpora (../shared/data) are absent")
def test_every_sampled_sentence_is_a_source_sentence_of_the_same_split():
    for corpus, files in CORPORA.items():
        source_dir = SHARED / ("gad/blurb" if corpus == "gad" else corpus)
        for name in files.values():
            source = (source_dir / name).read_text(encoding="utf-8")
            sample = (DEMO / corpus / name).read_text(encoding="utf-8")
            blocks = sample.split("\n\n") if corpus == "ncbi_disease" else sample.splitlines()
            assert all(block.strip("\n") in source for block in blocks)


def test_stratified_keeps_the_proportions_and_the_order():
    items = ["a"] * 90 + ["b"] * 10
    random.Random(0).shuffle(items)
    chosen = _stratified(random.Random(1), items, 20, lambda x: x)
    assert chosen == sorted(chosen) and len(set(chosen)) == 20
    assert Counter(items[i] for i in chosen) == {"a": 18, "b": 2}
    with pytest.raises(ValueError, match="only 100 are eligible"):
        _stratified(random.Random(1), items, 101, lambda x: x)


def test_stratified_rounds_to_exactly_n():
    items = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    for n in range(16):
        assert len(_stratified(random.Random(n), items, n, lambda x: x)) == n


def test_readme_names_the_command_that_drew_the_sample():
    readme = (DEMO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"python -m bioprobe\.data\.demo_sample \S+ data/demo", readme)
