"""Evaluate a prompting method (zero- or few-shot; nothing trains) on the validation and test
splits, on the pretrained model or an instruction-tuned one: the same evaluation JSON and
predictions file as every run."""

from bioprobe.pipeline.smk_support import job_context, run_script
from bioprobe.pipeline.tables import key_of
from bioprobe.prompting.run import evaluate_prompting
from bioprobe.settings import PromptingSettings, TaskPromptSettings
from bioprobe.training.evaluate import write_evaluation


def main(sm):
    # an instruction-tuned model's evaluation (method instruction+prompting): the second part
    method_key = f"methods.{sm.params.method_id}"
    task_key = f"tasks.{sm.wildcards.task}"
    result = evaluate_prompting(
        job_context(sm),
        PromptingSettings.from_config(sm.params.method, method_key),
        TaskPromptSettings.from_config(sm.params.prompt, f"{task_key}.prompt"),
        method_key=method_key,
        task_key=task_key,
    )
    write_evaluation(sm.output.evaluation, sm.output.predictions, key_of(sm.wildcards), result)


run_script(snakemake, main)  # noqa: F821
