"""Causal erasure per layer of one fine-tuned run (LEACE, and a random subspace of its rank)."""

from bioprobe.analysis.erasure import erasure_rows
from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.pipeline.tables import ERASURE_COLUMNS, key_of, write_keyed_rows
from bioprobe.settings import ErasureSettings, TrainingSettings
from bioprobe.training.evaluate import load_job_model


def main(sm):
    job = job_context(sm)
    training = TrainingSettings.from_config(sm.params.training, "training")
    job.check_max_length(training.max_length)
    model, tokenizer = load_job_model(job)
    settings = ErasureSettings.from_config(sm.params.erasure, "erasure")
    rows = erasure_rows(model, tokenizer, job.task(), training, settings, seed=job.seed)
    write_keyed_rows(rows, key_of(sm.wildcards), ERASURE_COLUMNS, sm.output[0])


run_script(snakemake, main)  # noqa: F821
