"""Resuming a killed fine-tuning job so that it ends exactly where an uninterrupted one would.

Two gaps in the stock Trainer (transformers 5) are closed here:

- a checkpoint is written file by file, `trainer_state.json` last, so a job killed while saving
  leaves a `checkpoint-N` directory that `get_last_checkpoint` would still pick (and resuming
  from it fails): :func:`last_complete_checkpoint` skips and removes such directories;
- the length-grouped sampler draws each epoch's order from the global RNG, whose state at the
  start of a resumed epoch differs from the uninterrupted run's, so the data order (and every
  number after it) would differ: :class:`ResumableTrainer` draws it from (seed, epoch) alone.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

log = logging.getLogger("bioprobe.train")

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json after the weights, optimiser and RNG states."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return str(state.get("global_step")) == _CHECKPOINT.fullmatch(checkpoint.name).group(1)


def last_complete_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest complete `checkpoint-N` in `checkpoint_dir`; newer incomplete ones are removed."""
    found = [
        (int(m.group(1)), p)
        for p in Path(checkpoint_dir).iterdir()
        if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))
    ]
    for _, path in sorted(found, reverse=True):
        if _is_complete(path):
            return str(path)
        log.warning("removing %s: the job was killed while saving it", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches in an order that depends only on the seed and the epoch."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        # accelerate's DataLoaderShard.set_epoch forwards the Trainer's epoch here
        self.generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)


class ResumableTrainer(Trainer):
    """A Trainer whose length-grouped data order survives a resume (see the module docstring).

    The random (not length-grouped) order needs nothing: accelerate's seedable sampler already
    draws it from (seed, epoch).
    """

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            # grouped by the batch of all processes (accelerate then deals each process its
            # share of every batch): the order of one process with batch 2b under two with b
            batch = sampler.batch_size * self.args.world_size
            return EpochSeededLengthGroupedSampler(batch, sampler.lengths, seed)
        return sampler
