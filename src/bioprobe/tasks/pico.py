"""PICO extraction (EBM-NLP as BLURB ships it): an IO tag per word, scored per word.

The tags are `O`, `I-PAR`, `I-INT`, `I-OUT` (participants, interventions, outcomes): an IO
scheme, kept as written; a `B-` tag is an error naming its file and line (a BIO corpus is an
`ner` task). Everything but the labels and the scores is NER's (:class:`~bioprobe.tasks.ner.NER`):
records, word-split encoding, the first sub-token carrying the word's tag, the word as probing
unit, the word-type control task.

Scores (`metrics.pico_scores`): BLURB's `word_macro_f1` (the F1 of each type's words, averaged
over the types) selects the checkpoint and is the headline; LinkBERT's `span_macro_f1` (a run of
one type's tags read as one span) comes with it. NER's strict `entity_f1` is not computed:
without B- tags two adjacent spans of one type cannot be told apart, and BLURB scores words.

Probes see the types (`I-PAR` -> `PAR`, one to one for IO tags), whatever `probe.label_mode`
says: BIO-only entity metrics would mis-read IO runs. Their headline is `token_macro_f1`, the
same word-level macro-F1 over the types (over those present in the probe's gold units), with
`selectivity_token_macro_f1` (task − control) per layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.tasks.ner import NER, entity_types


class Pico(NER):
    name = "pico"
    formats = ("bio-tsv", "hf")
    selection_metric = "word_macro_f1"
    main_metric = "word_macro_f1"
    figure_metrics = ("span_macro_f1",)  # LinkBERT's span-level reading, beside BLURB's
    probe_metric = "token_macro_f1"
    blurb_category = "PICO"
    blurb_metric = "word_macro_f1"
    prompt_template = "Sentence: {text}\n{entity}:"
    prompt_instruction = (
        "List the spans of the sentence that describe the trial's {entity}, separated by "
        "semicolons; answer none if there is none."
    )

    # --- data ---

    def check_config(self, cfg: Mapping[str, Any], task_id: str) -> None:
        # the schema's default `bio` means "tags as written", which for PICO is the IO scheme
        if cfg["label_scheme"] != "bio":
            raise ConfigError(
                "does not apply to pico, whose IO tags (O, I-PAR, I-INT, I-OUT) are read as "
                "written: leave it out",
                key=f"tasks.{task_id}.label_scheme",
            )

    def tag_scheme(self, cfg: Mapping[str, Any]) -> str:
        return "io"

    def labels_from_train(self, records: Sequence[dict], cfg: Mapping[str, Any]) -> list[str]:
        """O, then I-T per type, sorted."""
        from bioprobe.data.readers import tag_type

        types = sorted({tag_type(t) for r in records for t in r["tags"]} - {"O"})
        return ["O", *(f"I-{t}" for t in types)]

    def label_info(self, cfg: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        return {"label_scheme": "io", "entity_types": entity_types(labels)}

    # --- scores ---

    def tag_scores(
        self, labels: Sequence[str], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
    ) -> dict[str, float]:
        from bioprobe.metrics import pico_scores

        return pico_scores(gold, pred, entity_types(labels))

    def resampling(self, labels, rows):
        """Whole sentences are drawn, as for NER."""
        from bioprobe import bootstrap

        gold, pred = [r["gold"] for r in rows], [r["predicted"] for r in rows]
        return bootstrap.pico(gold, pred, entity_types(labels))

    # --- probes ---

    def probe(self, fit: Any, score: Any, kind: str, settings: Any, seed: int, threads: int):
        rows = super().probe(
            fit, score, kind, dataclasses.replace(settings, label_mode="type"), seed, threads
        )
        return rows + selectivity_rows(rows, self.probe_metric)

    def probe_sweep(self, fit, score, settings, sweep, seed, threads):
        """The sweep on the types, as `probe`."""
        settings = dataclasses.replace(settings, label_mode="type")
        return super().probe_sweep(fit, score, settings, sweep, seed, threads)


def selectivity_rows(rows: Sequence[dict], metric: str) -> list[dict]:
    """`selectivity_<metric>` (task − control `metric`) per layer and probe, under target
    `task`; none without control rows."""
    values = {
        (r["layer"], r["probe"], r["target"]): r["value"] for r in rows if r["metric"] == metric
    }
    out = []
    for (layer, probe, target), task in sorted(values.items()):
        control = values.get((layer, probe, "control"))
        if target == "task" and control is not None:
            out.append(
                {
                    "layer": layer,
                    "probe": probe,
                    "target": "task",
                    "metric": f"selectivity_{metric}",
                    "value": float(task - control),
                }
            )
    return out
