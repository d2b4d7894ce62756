"""Seeding every random generator a job uses, without importing the Trainer.

`transformers.set_seed` lives in `transformers.trainer_utils`, whose import pulls in peft and
costs about 2 s of start-up per job; jobs that only load a model (evaluation, dumps) seed here.
"""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """What `transformers.set_seed(seed)` does: Python, NumPy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
