"""Seeding every random generator a job uses, without importing the Trainer.

`transformers.set_seed` lives in `transformers.trainer_utils`, whose import pulls in peft and
costs about 2 s of start-up per job; jobs that only load a model (evaluation, dumps) seed here.
`derive_seed` turns one user seed into distinct seeds per purpose (scratch build, fresh head,
random-init control), so those draws never coincide.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """What `transformers.set_seed(seed)` does: Python, NumPy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def derive_seed(purpose: str, seed: int) -> int:
    """A torch seed for one purpose, so that purposes sharing a user seed draw different weights.

    Without it a scratch model built with seed 1 and its random-init control drawn with seed 1
    would be the same weights (same architecture, same draw order).
    """
    digest = hashlib.sha256(f"bioprobe:{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)
