"""Safe loading: weights from safetensors only, pickles and a model's own code only when that
model's config entry opts in, and no wildcard value that makes a path leave results/.

Loading a pickle-only model end to end (refused, then accepted with allow_pickle) is
tests/unit/test_models.py::test_pickle_only_directory_refused.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from bioprobe.errors import ConfigError
from bioprobe.models import check_weights, load_model_for_task, random_init_like, resolve_model

from ..workflow.conftest import LLM_MODELS, PROMPTING, ROOT, TINY_CONFIG, write_config

LABELS = ["O", "B-X", "I-X"]


@pytest.mark.parametrize(
    "pickle_name", ["pytorch_model.bin", "model.pt", "weights.pth", "pytorch_model.bin.index.json"]
)
def test_pickle_weights_are_refused_unless_the_model_opts_in(pickle_name, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocab.txt").write_text("[UNK]\naspirin\n")
    (tmp_path / pickle_name).write_bytes(b"\x80\x04")
    refused = resolve_model("old", {"source": str(tmp_path)})
    with pytest.raises(ConfigError) as info:
        check_weights(tmp_path, refused)
    assert info.value.key == "models.old.allow_pickle" and pickle_name in str(info.value)
    check_weights(tmp_path, resolve_model("old", {"source": str(tmp_path), "allow_pickle": True}))
    # safetensors present (an empty but complete file): they are used
    (tmp_path / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
    check_weights(tmp_path, refused)


@pytest.fixture
def custom_code_model(tiny_bert_dir, tmp_path):
    """A model directory whose architecture is only in its own Python files."""
    model = tmp_path / "custom"
    shutil.copytree(tiny_bert_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "custom-bert"
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForTokenClassification": "modeling_custom.CustomModel",
    }
    (model / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    for name in ("configuration_custom.py", "modeling_custom.py"):
        (model / name).write_text(f"open({str(marker)!r}, 'w').close()\n")
    return model, marker


@pytest.mark.parametrize("load", [load_model_for_task, random_init_like])
def test_a_models_own_code_never_runs_unless_it_opts_in(load, custom_code_model):
    model, marker = custom_code_model
    spec = resolve_model("custom", {"source": str(model)})
    assert spec.trust_remote_code is False  # the default
    with pytest.raises(ConfigError) as info:
        load(None, "ner", LABELS, spec=spec, seed=0)
    assert info.value.key == "models.custom.trust_remote_code"
    assert "it was not run" in str(info.value)
    assert not marker.exists()


# --- wildcards: every output path stays inside the workflow's own folders ---

GOOD = {
    "task": "demo-ner",
    "model": "tiny-bert",
    "method": "full",
    "size": "50",
    "seed": "1",
    "origin": "published",  # an instruction tuning's starting weights (instruction_tune)
    "name": "downstream",  # a table (render_table)
    "metric": "cka",  # a representation-similarity figure (plot_representation_similarity)
}
EVIL = ["..", "../x", "a/b", "/etc", "", "A", "a b", "~"]
ROOTS = ("results/", "resources/", "logs/", "benchmarks/")
# values for rules that narrow a wildcard further (evaluate: the published model only)
OTHER_GOOD = {"method": ["pretrained"], "size": ["0"]}


#: a grid with prompting and instruction methods too: their rules' constraints are real ones
INSTRUCTED_CONFIG = {
    **TINY_CONFIG,
    "models": LLM_MODELS,
    "methods": {"full": {}, "instruct": {"kind": "instruction"}, **PROMPTING},
}
GOOD_INSTRUCTED = {"method": ["instruct", "instruct+zero-shot", "zero-shot"], "size": ["0"]}


@pytest.fixture(scope="module", params=["tiny", "instructed"])
def workflow(tmp_path_factory, request):
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
        WorkflowSettings,
    )

    workdir = tmp_path_factory.mktemp("parsed")
    write_config(workdir, TINY_CONFIG if request.param == "tiny" else INSTRUCTED_CONFIG)
    with SnakemakeApi(OutputSettings()) as api:
        parsed = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[workdir / "config.yaml"]),
            storage_settings=StorageSettings(),
            workflow_settings=WorkflowSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=workdir,
        )
        yield parsed._workflow


def _fill(pattern: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(,[^}]*)?\}", lambda m: values[m.group(1)], pattern)


def _good_for(pattern: str) -> dict[str, str] | None:
    """GOOD, with each wildcard's value replaced where the pattern's constraint wants another;
    None where a constraint admits none of them (the prompt rule of a grid without prompting
    methods matches nothing)."""
    values = dict(GOOD)
    for name, regex in re.findall(r"\{(\w+),([^}]*)\}", pattern):
        candidates = [GOOD[name], *OTHER_GOOD.get(name, []), *GOOD_INSTRUCTED.get(name, [])]
        match = next((v for v in candidates if re.fullmatch(regex, v)), None)
        if match is None:
            return None
        values[name] = match
    return values


def test_no_wildcard_value_can_lead_a_path_out_of_the_workflow(workflow):
    checked = 0
    for rule in workflow.rules:
        benchmark = [rule.benchmark] if rule.benchmark else []
        for pattern in map(str, [*rule.output, *rule.log, *benchmark]):
            assert pattern.startswith(ROOTS), f"{rule.name}: {pattern}"
        for pattern in map(str, rule.output):
            names = re.findall(r"\{(\w+)", pattern)
            assert all(re.search(rf"\{{{n},", pattern) for n in names), f"unconstrained: {pattern}"
            if not names:
                continue
            good = _good_for(pattern)
            if good is None:  # no value the tests know: it must produce none of them either
                assert not rule.is_producer(_fill(pattern, GOOD)), pattern
                good = GOOD
            else:
                assert rule.is_producer(_fill(pattern, good)), pattern  # the check can fail
            for name in names:
                for bad in EVIL:
                    assert not rule.is_producer(_fill(pattern, {**good, name: bad})), (
                        f"{rule.name} accepts {name}={bad!r}"
                    )
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("size", ["101", "150", "050", "-1"])
def test_a_size_outside_0_to_100_is_no_output(workflow, size):
    target = _fill(str(workflow.get_rule("finetune").output[0]), {**GOOD, "size": size})
    assert not workflow.get_rule("finetune").is_producer(target)


def test_fine_tuned_runs_are_scored_by_finetune_and_size_0_by_evaluate(workflow):
    finetune, evaluate = workflow.get_rule("finetune"), workflow.get_rule("evaluate")
    tuned = "results/eval/demo-ner/tiny-bert/full/size50/seed1.json"
    published = "results/eval/demo-ner/tiny-bert/pretrained/size0/seed1.json"
    assert finetune.is_producer(tuned) and not evaluate.is_producer(tuned)
    assert evaluate.is_producer(published) and not finetune.is_producer(published)
