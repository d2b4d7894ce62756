from bioprobe.pipeline.checks import missing_task_data


def cfg(**task):
    base = {
        "type": "ner",
        "format": "bio-tsv",
        "splits": {"train": "a.tsv", "validation": "b.tsv", "test": "c.tsv"},
    }
    return {"tasks": {"t": {**base, **task}}}


def test_demo_data_and_hub_ids_are_not_checked(tmp_path):
    assert missing_task_data(cfg(path="resources/demo/ner"), tmp_path) == []
    assert missing_task_data(cfg(path="tner/bionlp2004", format="hf"), tmp_path) == []
