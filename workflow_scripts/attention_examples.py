"""A few attention examples of one task and model, pretrained against fine-tuned: the heat-map
figure (PNG, PDF) and the interactive head view (HTML)."""

import logging
from pathlib import Path

from bioprobe.analysis.examples import load_examples
from bioprobe.pipeline.smk_support import run_script
from bioprobe.plotting.examples import plot_attention_examples
from bioprobe.plotting.headview import write_head_view

log = logging.getLogger("bioprobe.attention_examples")


def main(sm):
    p = sm.params
    examples = load_examples(
        sm.input.pretrained, sm.input.finetuned, n=p.examples, max_tokens=p.max_tokens
    )
    for e in examples:
        c = e.most_changed()
        log.info(
            "example %d (%d tokens): layer %d head %d changed most, JS %.3g nats, cosine %.4g",
            *(e.index + 1, len(e.tokens), c.layer, c.head, c.js, c.cosine),
        )
    where = f"{sm.wildcards.task} · {sm.wildcards.model}"
    plot_attention_examples(
        examples,
        Path(sm.output.png).with_suffix(""),
        title=f"{where}: attention of the head that changed most on each example",
        variant=p.variant,
        max_tokens=p.max_tokens,
    )
    write_head_view(
        examples,
        sm.output.html,
        title=f"{where}: attention head view",
        variant=p.variant,
        max_tokens=p.max_tokens,
    )


run_script(snakemake, main)  # noqa: F821
