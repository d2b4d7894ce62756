from bioprobe.checks import missing_task_data


def cfg(**task):
    base = {
        "type": "ner",
        "format": "bio-tsv",
        "splits": {"train": "a.tsv", "validation": "b.tsv", "test": "c.tsv"},
    }
    return {"tasks": {"t": {**base, **task}}}


def test_missing_directory_and_files_are_named(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.tsv").write_text("x\tO\n")
    assert missing_task_data(cfg(path="nowhere"), tmp_path) == [
        "config key 'tasks.t.path': data directory 'nowhere' does not exist"
    ]
    problems = missing_task_data(cfg(path="d"), tmp_path)
    assert problems == [
        "config key 'tasks.t.splits.validation': file 'd/b.tsv' not found",
        "config key 'tasks.t.splits.test': file 'd/c.tsv' not found",
    ]


def test_demo_data_and_hub_ids_are_not_checked(tmp_path):
    assert missing_task_data(cfg(path="resources/demo/ner"), tmp_path) == []
    assert missing_task_data(cfg(path="tner/bionlp2004", format="hf"), tmp_path) == []


def test_mednli_message_says_it_is_credentialed(tmp_path):
    splits = {
        "train": "mli_train_v1.jsonl",
        "validation": "mli_dev_v1.jsonl",
        "test": "mli_test_v1.jsonl",
    }
    (problem,) = missing_task_data(cfg(path="resources/mednli", splits=splits), tmp_path)
    assert "credentialed" in problem and "mli_train_v1.jsonl" in problem
