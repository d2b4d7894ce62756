"""Trainer progress as plain log lines (step, rate, ETA, loss) in the rule's log."""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback

from bioprobe.progress import format_duration

log = logging.getLogger("bioprobe.train")


class ProgressLogCallback(TrainerCallback):
    """Logs `step i/N (p%) | r steps/s | ETA | loss` every `logging_steps`, plus eval results."""

    def __init__(self) -> None:
        self._start_time: float | None = None
        self._start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start_time = time.monotonic()
        self._start_step = state.global_step  # > 0 when resuming from a checkpoint
        log.info(
            "training: %d optimiser steps, %s epochs, starting at step %d",
            state.max_steps,
            args.num_train_epochs,
            state.global_step,
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if any(k.startswith("eval_") for k in logs):
            shown = {k: round(v, 4) for k, v in logs.items() if isinstance(v, float)}
            log.info("validation at step %d: %s", state.global_step, shown)
            return
        if "loss" not in logs or self._start_time is None:
            return
        done = state.global_step - self._start_step
        elapsed = time.monotonic() - self._start_time
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (state.max_steps - state.global_step) / rate if rate > 0 else float("nan")
        log.info(
            "step %d/%d (%.0f%%) | %.2f steps/s | elapsed %s | ETA %s | loss %.4f | lr %.2e",
            state.global_step,
            state.max_steps,
            100.0 * state.global_step / max(1, state.max_steps),
            rate,
            format_duration(elapsed),
            format_duration(left) if rate > 0 else "?",
            logs["loss"],
            logs.get("learning_rate", float("nan")),
        )
