"""One GPU per job on a multi-GPU workstation: lock-file slots in a directory shared by the jobs.

Snakemake limits how many GPU jobs run at once (``--resources gpu=N``) but does not say which
device a job should use, so without help every job lands on GPU 0. :func:`acquire_gpus` gives a
job ``n`` device ids nobody else holds: one lock file per device in a shared directory, held
with ``fcntl.flock`` for the life of the job's process. The kernel drops a lock when its process
exits, however it exits, so a crashed or killed job never leaves a device blocked. A job that
finds no free device waits for one: never two jobs on one GPU.

Jobs that a scheduler already placed (SLURM sets ``CUDA_VISIBLE_DEVICES`` from the GPUs it
allocated; so may a user) are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GpuLease",
    "acquire_gpus",
    "assign_job_gpus",
    "default_lock_dir",
    "visible_gpus",
]

log = logging.getLogger(__name__)

#: where the lock files live unless ``BIOPROBE_GPU_LOCK_DIR`` says otherwise: per machine and
#: per user, so two workflows on one workstation share the devices fairly too
LOCK_DIR_ENV = "BIOPROBE_GPU_LOCK_DIR"
#: a comma-separated list of device ids this machine's jobs may use (default: every GPU found)
DEVICES_ENV = "BIOPROBE_GPUS"


@dataclass
class GpuLease:
    """Device ids held by this process; the locks go when :meth:`release` runs or it exits."""

    devices: list[str]
    _files: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for fd in self._files:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files.clear()

    def __enter__(self) -> GpuLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def default_lock_dir() -> Path:
    given = os.environ.get(LOCK_DIR_ENV)
    if given:
        return Path(given)
    return Path(tempfile.gettempdir()) / f"bioprobe-gpu-locks-{os.getuid()}"


def visible_gpus() -> list[str]:
    """The GPU ids of this machine, without initialising CUDA (``BIOPROBE_GPUS`` overrides)."""
    given = os.environ.get(DEVICES_ENV)
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip()]
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=index", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            return [line.strip() for line in out.splitlines() if line.strip().isdigit()]
        except (OSError, subprocess.SubprocessError):
            pass
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    return []


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def acquire_gpus(
    n: int,
    devices: Sequence[str],
    lock_dir: str | os.PathLike | None = None,
    *,
    poll_seconds: float = 2.0,
    timeout: float | None = None,
) -> GpuLease:
    """Hold `n` of `devices` that no other process holds, waiting until that many are free.

    All or nothing (a job never sits on part of its GPUs while waiting for the rest, so two
    multi-GPU jobs cannot deadlock): the scan runs under a directory-wide lock and gives back
    what it took when it cannot get `n`. Raises ``ValueError`` when `n` exceeds the devices
    there are, ``TimeoutError`` after `timeout` seconds.
    """
    devices = list(dict.fromkeys(str(d) for d in devices))
    if n < 1:
        return GpuLease([])
    if n > len(devices):
        raise ValueError(f"a job asks for {n} GPU(s) but this machine has {len(devices)}")
    root = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited = False
    while True:
        lease = _scan(n, devices, root)
        if lease is not None:
            if waited:
                log.info("got GPU(s) %s after %.0f s", ",".join(lease.devices), _since(start))
            return lease
        if timeout is not None and _since(start) >= timeout:
            raise TimeoutError(f"no {n} free GPU(s) among {devices} after {timeout:.0f} s")
        if not waited:
            log.info("all GPUs (%s) are in use by other jobs; waiting", ",".join(devices))
            waited = True
        time.sleep(poll_seconds)


def _since(start: float) -> float:
    return time.monotonic() - start


def _scan(n: int, devices: list[str], root: Path) -> GpuLease | None:
    guard = os.open(root / "assign.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        lease = GpuLease([])
        for device in devices:
            fd = _try_lock(root / f"gpu{device}.lock")
            if fd is None:
                continue
            lease.devices.append(device)
            lease._files.append(fd)
            if len(lease.devices) == n:
                return lease
        lease.release()
        return None
    finally:
        os.close(guard)  # closing drops the directory-wide lock


#: the lease of the current job process (kept referenced so its locks live as long as the job)
_JOB_LEASE: GpuLease | None = None


def assign_job_gpus(requested: int, env: dict | None = None) -> list[str] | None:
    """Set ``CUDA_VISIBLE_DEVICES`` for a job that asked for `requested` GPUs.

    Does nothing (returns None) when the job wants no GPU, when the environment already names
    the devices (a scheduler such as SLURM or the user chose them), or when the machine has
    none (the job runs on the CPU). Otherwise holds free devices until the process exits and
    returns their ids. Must run before CUDA is initialised (before the first ``torch.cuda``
    call), which is where Snakemake's rule scripts call it.
    """
    global _JOB_LEASE
    env = os.environ if env is None else env
    if requested < 1 or "CUDA_VISIBLE_DEVICES" in env or "SLURM_JOB_ID" in env:
        return None
    devices = visible_gpus()
    if not devices:
        return None
    _JOB_LEASE = acquire_gpus(min(requested, len(devices)), devices)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # the ids of nvidia-smi
    env["CUDA_VISIBLE_DEVICES"] = ",".join(_JOB_LEASE.devices)
    log.info("CUDA_VISIBLE_DEVICES=%s", env["CUDA_VISIBLE_DEVICES"])
    return list(_JOB_LEASE.devices)
