"""Score a model as published (size 0, a seeded untrained head) on the validation and test
splits. Fine-tuned runs are scored by their finetune job, on the model still in memory."""

from pathlib import Path

from bioprobe.models import resolve_model
from bioprobe.smk_support import run_script
from bioprobe.tables import key_of
from bioprobe.training.evaluate import evaluate, write_evaluation


def main(sm):
    wc = sm.wildcards
    result = evaluate(
        task_dir=Path(sm.input.labels).parent,
        model_location=sm.params.location,
        spec=resolve_model(wc.model, sm.params.model),
        training=sm.params.training,
        seed=int(wc.seed),
    )
    write_evaluation(sm.output[0], key_of(wc), result)


run_script(snakemake, main)  # noqa: F821
