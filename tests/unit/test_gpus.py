"""GPU slot assignment (bioprobe.pipeline.gpus) with fake device ids: no GPU needed."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from bioprobe.pipeline import gpus
from bioprobe.pipeline.gpus import acquire_gpus, assign_job_gpus


def test_distinct_devices_until_all_are_taken(tmp_path):
    a = acquire_gpus(1, ["0", "1", "2"], tmp_path)
    b = acquire_gpus(1, ["0", "1", "2"], tmp_path)
    c = acquire_gpus(1, ["0", "1", "2"], tmp_path)
    assert sorted(a.devices + b.devices + c.devices) == ["0", "1", "2"]
    with pytest.raises(TimeoutError):
        acquire_gpus(1, ["0", "1", "2"], tmp_path, poll_seconds=0.05, timeout=0.2)
    b.release()
    d = acquire_gpus(1, ["0", "1", "2"], tmp_path, timeout=1)
    assert d.devices == b.devices
    for lease in (a, c, d):
        lease.release()


def test_multi_gpu_jobs_get_all_or_nothing(tmp_path):
    held = acquire_gpus(1, ["0", "1", "2"], tmp_path)
    assert held.devices == ["0"]
    pair = acquire_gpus(2, ["0", "1", "2"], tmp_path)
    assert pair.devices == ["1", "2"]
    pair.release()
    # two of three free but three wanted: nothing is kept while waiting
    with pytest.raises(TimeoutError):
        acquire_gpus(3, ["0", "1", "2"], tmp_path, poll_seconds=0.05, timeout=0.2)
    again = acquire_gpus(2, ["0", "1", "2"], tmp_path, timeout=1)
    assert again.devices == ["1", "2"]
    again.release()
    held.release()


def test_more_gpus_than_the_machine_has_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="asks for 3 GPU"):
        acquire_gpus(3, ["0", "1"], tmp_path)
    assert acquire_gpus(0, ["0"], tmp_path).devices == []


def _job(lock_dir, devices, hold, queue):
    lease = acquire_gpus(1, devices, lock_dir, poll_seconds=0.02)
    start = time.monotonic()
    time.sleep(hold)
    queue.put((lease.devices[0], start, time.monotonic()))


def test_concurrent_jobs_never_share_a_device(tmp_path):
    """Six processes, two fake GPUs: at most two run at once and never two on one device."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_job, args=(tmp_path, ["7", "9"], 0.3, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    runs = [queue.get(timeout=5) for _ in procs]
    assert {device for device, _, _ in runs} == {"7", "9"}
    for i, (dev_a, start_a, end_a) in enumerate(runs):
        for dev_b, start_b, end_b in runs[i + 1 :]:
            if dev_a == dev_b:
                assert end_a <= start_b or end_b <= start_a, "two jobs held one GPU at once"
    events = sorted([(s, 1) for _, s, _ in runs] + [(e, -1) for _, _, e in runs])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2


def _hold_forever(lock_dir, ready):
    acquire_gpus(1, ["0"], lock_dir)
    ready.set()
    time.sleep(60)


def test_a_killed_job_frees_its_device(tmp_path):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_forever, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(TimeoutError):
        acquire_gpus(1, ["0"], tmp_path, poll_seconds=0.05, timeout=0.2)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    lease = acquire_gpus(1, ["0"], tmp_path, timeout=5)
    assert lease.devices == ["0"]
    lease.release()


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(gpus.DEVICES_ENV, "3,5")
    monkeypatch.setattr(gpus, "_JOB_LEASE", None)
    return tmp_path


def test_a_gpu_job_gets_cuda_visible_devices(fake_machine):
    env: dict[str, str] = {}
    assert assign_job_gpus(1, env) == ["3"]
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    other: dict[str, str] = {}
    held = gpus._JOB_LEASE
    assert assign_job_gpus(1, other) == ["5"]  # the first job still holds device 3
    held.release()
    gpus._JOB_LEASE.release()


@pytest.mark.parametrize(
    ("requested", "env"),
    [
        (0, {}),  # a CPU job
        (1, {"CUDA_VISIBLE_DEVICES": "2"}),  # the user chose
        (1, {"SLURM_JOB_ID": "17"}),  # SLURM allocated the job's GPUs
    ],
)
def test_jobs_that_are_already_placed_are_left_alone(fake_machine, requested, env):
    before = dict(env)
    assert assign_job_gpus(requested, env) is None
    assert env == before


def test_a_machine_without_gpus_runs_on_the_cpu(fake_machine, monkeypatch):
    monkeypatch.setenv(gpus.DEVICES_ENV, "")
    env: dict[str, str] = {}
    assert assign_job_gpus(1, env) is None
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_rule_scripts_get_their_gpu_before_main_runs(tmp_path):
    """The wiring in smk_support.run_script, in a process of its own (as a rule script is)."""
    code = textwrap.dedent(
        """
        import os
        from types import SimpleNamespace
        from bioprobe.pipeline.smk_support import run_script
        seen = {}
        def main(sm):
            seen[sm.name] = os.environ.get("CUDA_VISIBLE_DEVICES")
        job = SimpleNamespace(name="gpu-job", log=[], threads=1, resources=SimpleNamespace(gpu=1))
        run_script(job, main)
        print(seen)
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update({gpus.DEVICES_ENV: "4", gpus.LOCK_DIR_ENV: str(tmp_path)})
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "'gpu-job': '4'" in out.stdout
    assert (tmp_path / "gpu4.lock").exists()
