"""Fine-tune one (task, model, method, size, seed) with the Hugging Face Trainer, then score
the trained model on the validation and test splits while it is still in memory."""

from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.pipeline.tables import key_of
from bioprobe.settings import TrainingSettings
from bioprobe.training.evaluate import SPLITS, write_evaluation
from bioprobe.training.finetune import finetune


def main(sm):
    metrics = finetune(
        job_context(sm),
        subset_file=sm.input.subset,
        size=int(sm.wildcards.size),
        training=TrainingSettings.from_config(sm.params.training, "training"),
        out_dir=sm.output.model,
        checkpoint_dir=sm.params.checkpoints,
        method=sm.params.method,
        method_id=sm.wildcards.method,
        score_splits=SPLITS,
    )
    write_evaluation(
        sm.output.evaluation, sm.output.predictions, key_of(sm.wildcards), metrics["evaluation"]
    )


run_script(snakemake, main)  # noqa: F821
