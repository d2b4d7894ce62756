"""Score one model on the validation and test splits."""

from pathlib import Path

from bioprobe.io import write_json
from bioprobe.models import resolve_model
from bioprobe.smk_support import run_script
from bioprobe.training.evaluate import evaluate


def main(sm):
    wc = sm.wildcards
    result = evaluate(
        task_dir=Path(sm.input.labels).parent,
        model_location=sm.params.location,
        spec=resolve_model(wc.model, sm.params.model),
        training=sm.params.training,
        seed=int(wc.seed),
        base_location=sm.params.base,
    )
    key = {"task": wc.task, "model": wc.model, "method": wc.method}
    write_json(sm.output[0], {**key, "size": int(wc.size), "seed": int(wc.seed), **result})


run_script(snakemake, main)  # noqa: F821
