"""What a killed job leaves behind: checkpoints half-saved, outputs half-written.

End to end (SIGKILL, resume, same numbers): tests/workflow/test_reliability.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from bioprobe.io import atomic_path, write_json
from bioprobe.training.resume import EpochSeededLengthGroupedSampler, last_complete_checkpoint


def _checkpoint(root, step, *, state=True, corrupt=False):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if state:
        text = json.dumps({"global_step": step})
        (path / "trainer_state.json").write_text(text[:5] if corrupt else text)
    return path


def test_resume_skips_and_removes_half_saved_checkpoints(tmp_path):
    _checkpoint(tmp_path, 4)
    good = _checkpoint(tmp_path, 8)
    no_state = _checkpoint(tmp_path, 12, state=False)  # killed before trainer_state.json
    torn = _checkpoint(tmp_path, 16, corrupt=True)  # killed while writing it
    (tmp_path / "fingerprint.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(good)
    assert not no_state.exists() and not torn.exists()
    assert (tmp_path / "checkpoint-4").exists()  # older complete ones are the Trainer's to rotate


def test_no_complete_checkpoint_means_step_zero(tmp_path):
    _checkpoint(tmp_path, 3, state=False)
    assert last_complete_checkpoint(tmp_path) is None


def test_length_grouped_order_depends_only_on_seed_and_epoch():
    """A resumed epoch must see the batches the uninterrupted run saw in that epoch."""
    lengths = [(i * 37) % 50 + 1 for i in range(200)]
    first = EpochSeededLengthGroupedSampler(16, lengths, seed=1)
    first.set_epoch(1)
    order = list(first)
    fresh = EpochSeededLengthGroupedSampler(16, lengths, seed=1)
    fresh.set_epoch(1)
    torch.rand(100)  # the global RNG moves; the order must not
    assert list(fresh) == order and sorted(order) == list(range(200))
    fresh.set_epoch(2)
    assert list(fresh) != order
    assert list(EpochSeededLengthGroupedSampler(16, lengths, seed=2)) != list(first)


def test_atomic_write_never_shows_a_partial_output_and_cleans_up_after_a_kill(tmp_path):
    """SIGKILL in the middle of writing: the output is absent, not half there; the next write
    of the same output removes the killed one's temporary (dumps can be gigabytes)."""
    out = tmp_path / "dump"
    script = textwrap.dedent(f"""
        import os, signal
        from bioprobe.io import atomic_path
        with atomic_path({str(out)!r}, is_dir=True) as tmp:
            (tmp / "part.npy").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", script], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    (stale,) = tmp_path.iterdir()
    assert stale.name.startswith(".dump.") and stale.name.endswith(".tmp")

    neighbour = tmp_path / ".dump.tsv.abcd1234.tmp"  # another output's temporary: kept
    neighbour.write_text("x")
    with atomic_path(out, is_dir=True) as tmp:
        (tmp / "part.npy").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dump.tsv.abcd1234.tmp", "dump"]


def test_a_failing_write_leaves_the_old_output(tmp_path):
    path = tmp_path / "table.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"v": 1} and os.listdir(tmp_path) == ["table.json"]
