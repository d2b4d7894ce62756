"""Fine-tune one (task, model, method, size, seed) with the Hugging Face Trainer, then score
the trained model on the validation and test splits while it is still in memory."""

from pathlib import Path

from bioprobe.models import resolve_model
from bioprobe.smk_support import run_script
from bioprobe.tables import key_of
from bioprobe.training.evaluate import SPLITS, write_evaluation
from bioprobe.training.finetune import finetune


def main(sm):
    wc = sm.wildcards
    metrics = finetune(
        task_dir=Path(sm.input.labels).parent,
        subset_file=sm.input.subset,
        size=int(wc.size),
        seed=int(wc.seed),
        model_location=sm.params.location,
        spec=resolve_model(wc.model, sm.params.model),
        training=sm.params.training,
        out_dir=sm.output.model,
        checkpoint_dir=sm.params.checkpoints,
        method=sm.params.method,
        method_id=wc.method,
        attempt=int(sm.resources.attempt),
        score_splits=SPLITS,
    )
    write_evaluation(sm.output.evaluation, key_of(wc), metrics["evaluation"])


run_script(snakemake, main)  # noqa: F821
