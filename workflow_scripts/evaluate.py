"""Score a model as published (size 0, a seeded untrained head) on the validation and test
splits. Fine-tuned runs are scored by their finetune job, on the model still in memory."""

from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.pipeline.tables import key_of
from bioprobe.settings import TrainingSettings
from bioprobe.training.evaluate import evaluate, write_evaluation


def main(sm):
    training = TrainingSettings.from_config(sm.params.training, "training")
    result = evaluate(job_context(sm), training)
    write_evaluation(sm.output.evaluation, sm.output.predictions, key_of(sm.wildcards), result)


run_script(snakemake, main)  # noqa: F821
