"""Instruction-tune one (model, origin, instruction method, size, seed) on its subset of the
instruction set (bioprobe.instructions.sft); the merged model is saved as a pretrained
checkpoint, which the analyses and the prompting methods read."""

from bioprobe import methods
from bioprobe.instructions import read_instruction_subset
from bioprobe.io import read_jsonl
from bioprobe.models import resolve_model
from bioprobe.pipeline.smk_support import run_script
from bioprobe.settings import TrainingSettings


def main(sm):
    from bioprobe.instructions.sft import instruction_tune

    wc = sm.wildcards
    records = read_instruction_subset(read_jsonl(sm.input.records), sm.input.subset, int(wc.size))
    entry = sm.params.method
    metrics = instruction_tune(
        records,
        spec=resolve_model(wc.model, sm.params.model),
        location=sm.params.location,
        method=methods.get("instruction").tuning(entry),
        training=TrainingSettings.from_config(sm.params.training, "training"),
        out_dir=sm.output.model,
        checkpoint_dir=sm.params.checkpoints,
        seed=int(wc.seed),
        method_id=wc.method,
        chat_template=entry["chat_template"],
        attempt=int(getattr(sm.resources, "attempt", 1) or 1),
    )
    print(
        f"{wc.method} {wc.size}% ({len(records)} instructions), seed {wc.seed}: "
        f"{metrics['global_steps']} steps, final train loss {metrics['train_loss']:.4f}"
    )


run_script(snakemake, main)  # noqa: F821
