"""Score a model as published (size 0, a seeded untrained head) on the validation and test
splits. Fine-tuned runs are scored by their finetune job, on the model still in memory."""

from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.pipeline.tables import key_of
from bioprobe.settings import TrainingSettings
from bioprobe.training.evaluate import evaluate, write_evaluation


def main(sm):
    training = TrainingSettings.from_config(sm.params.training, "training")
    write_evaluation(sm.output[0], key_of(sm.wildcards), evaluate(job_context(sm), training))


run_script(snakemake, main)  # noqa: F821
