"""A real single-node SLURM cluster on localhost, for CI: munge, slurmctld and slurmd from the
Debian packages, private to one directory (its own munge key and socket, its own slurm.conf
reached through ``SLURM_CONF``), so nothing of the machine's own configuration is touched.

No systemd and no cgroups (``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``);
a fake GPU gres (``gpu:fake:N`` on ``/dev/null``-like device files) so that jobs asking for GPUs
are scheduled on a machine without any; no slurmdbd, so job status comes from ``squeue`` and the
record of finished jobs from slurmctld itself (``scontrol show job``, kept for ``MinJobAge``)
and from its job-completion log (``JobCompType=jobcomp/filetxt``).

    python tests/slurm/cluster.py install           # apt-get install where missing (root)
    python tests/slurm/cluster.py up /tmp/slurm     # prints `export SLURM_CONF=...`
    python tests/slurm/cluster.py down /tmp/slurm   # stops the daemons it started, by PID

The test suite uses :class:`Cluster` through the fixture in ``tests/slurm/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: the Debian packages that give the daemons and the client commands
PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client"]
COMMANDS = ["munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "sinfo"]


def missing_commands() -> list[str]:
    return [c for c in COMMANDS if shutil.which(c) is None and not Path(f"/usr/sbin/{c}").exists()]


def ensure_installed(log=print) -> str | None:
    """Install SLURM with apt-get where it is missing; the reason it cannot be, else None."""
    if not missing_commands():
        return None
    if not sys.platform.startswith("linux"):
        return f"SLURM cannot be installed on {sys.platform}"
    if shutil.which("apt-get") is None:
        return f"SLURM is not installed ({', '.join(missing_commands())} missing) and no apt-get"
    if os.geteuid() != 0:
        return "SLURM is not installed and installing it needs root (apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    log(f"installing {' '.join(PACKAGES)} with apt-get")
    result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return f"apt-get could not install SLURM: {result.stderr.strip()[-500:]}"
    missing = missing_commands()
    return f"still missing after apt-get: {', '.join(missing)}" if missing else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    """A single-node cluster whose every file lives under `root`."""

    def __init__(
        self,
        root: str | os.PathLike,
        gpus: int = 2,
        min_job_age: int = 3600,
        cpus: int = 8,
        memory_mb: int = 256_000,
    ):
        self.root = Path(root).resolve()
        self.gpus = gpus
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.min_job_age = min_job_age
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.jobcomp = self.root / "jobcomp.txt"
        self.munge_socket = self.root / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """The environment under which SLURM's clients talk to this cluster.

        `bin/` first on PATH: inside a job, snakemake-executor-plugin-slurm-jobstep starts
        `srun` with every SLURM_* variable but a few removed, SLURM_CONF included, so on a
        cluster whose slurm.conf is not at /etc/slurm/ (this one) `srun` needs to be told.
        """
        path = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    # --- configuration -----------------------------------------------------------------------

    def _hardware(self) -> tuple[int, int]:
        out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True).stdout
        cpus = int(re.search(r"CPUs=(\d+)", out).group(1))
        mem = int(re.search(r"RealMemory=(\d+)", out).group(1))
        return cpus, mem

    def _devices(self) -> list[str]:
        """Character devices standing in for GPUs: like /dev/null (made in `root` with mknod
        where the file system allows it, else /dev/null itself and its siblings)."""
        made = []
        for i in range(self.gpus):
            path = self.root / "dev" / f"fakegpu{i}"
            path.parent.mkdir(exist_ok=True)
            try:
                if not path.exists():
                    os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
                made.append(str(path))
            except OSError:
                made = []
                break
        return made or ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][: self.gpus]

    def write_config(self) -> None:
        for sub in ("state", "spool", "log", "munge", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        cpus, mem = self._hardware()
        devices = self._devices()
        user = os.environ.get("USER") or "root"
        ctl_port, d_port = _free_port(), _free_port()
        self.conf.write_text(
            "\n".join(
                [
                    "# written by tests/slurm/cluster.py: a private single-node test cluster",
                    "ClusterName=bioprobe-ci",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={ctl_port}",
                    f"SlurmdPort={d_port}",
                    f"SlurmUser={user}",
                    f"SlurmdUser={user}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.jobcomp}",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    # finished jobs stay visible to squeue/scontrol this long (the status
                    # command is squeue: keep it well above 3x the status-check interval)
                    f"MinJobAge={self.min_job_age}",
                    "SchedulerParameters=defer_batch=0",
                    "GresTypes=gpu",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "InactiveLimit=0",
                    "KillWait=5",
                    "Waittime=0",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    # the node claims more than the machine has (config_overrides: slurmd does
                    # not drain it for that), so the profile's real requests (4 CPUs, 32 GB x
                    # attempt) are scheduled unchanged; tests limit how many jobs run at once
                    "SlurmdParameters=config_overrides",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={max(cpus, self.cpus)} "
                    f"RealMemory={max(mem, self.memory_mb)} "
                    f"Gres=gpu:fake:{len(devices)} State=UNKNOWN",
                    f"PartitionName=ci Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.root / "gres.conf").write_text(
            "".join(f"NodeName={self.node} Name=gpu Type=fake File={d}\n" for d in devices)
        )
        srun = shutil.which("srun") or "/usr/bin/srun"
        shim = self.root / "bin" / "srun"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {srun} "$@"\n')
        shim.chmod(0o755)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    # --- daemons -----------------------------------------------------------------------------

    def _pidfile(self, name: str) -> Path:
        return self.root / "run" / f"{name}.pid"

    def start(self, timeout: float = 60) -> None:
        self.write_config()
        munge = self.root / "munge"
        munge.chmod(0o700)
        self._run(
            _sbin("munged"),
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={munge / 'munge.key'}",
            f"--pid-file={self._pidfile('munged')}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        try:
            self._run(_sbin("slurmctld"), "-f", str(self.conf), "-i")
            self._run(_sbin("slurmd"), "-f", str(self.conf))
            self._wait_until_up(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, timeout: float) -> None:
        state = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True
            ).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"the test cluster did not come up (node state {state!r})\n" + self.logs()
        )

    def _run(self, *cmd: str) -> None:
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr}\n{self.logs()}")

    def pids(self) -> dict[str, int]:
        found = {}
        for name in ("slurmd", "slurmctld", "munged"):
            with contextlib.suppress(OSError, ValueError):
                found[name] = int(self._pidfile(name).read_text().split()[0])
        return found

    def stop(self, timeout: float = 20) -> None:
        """Cancel what is left in the queue, then stop the daemons this cluster started, by
        the PIDs they wrote; never by name."""
        if self.pids().get("slurmctld"):
            subprocess.run(["scancel", "--full", "--quiet", f"--user={os.geteuid()}"],
                           env=self.env, capture_output=True, timeout=30)  # fmt: skip
            time.sleep(1)
        for name, pid in self.pids().items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._pidfile(name).unlink(missing_ok=True)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    # --- the scheduler's own records ---------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (finished ones for MinJobAge), as key=value."""
        out = subprocess.run(
            ["scontrol", "show", "job", "-o"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [_fields(line) for line in out.splitlines() if line.startswith("JobId=")]

    def completions(self) -> list[dict[str, str]]:
        """The job-completion log (jobcomp/filetxt): one record per job that ended."""
        if not self.jobcomp.exists():
            return []
        return [_fields(line) for line in self.jobcomp.read_text().splitlines() if line]


def _fields(line: str) -> dict[str, str]:
    """`Key=value Key2=value with spaces ...` (scontrol -o, jobcomp) into a dict."""
    pairs = re.findall(r"(\w[\w:/]*)=(.*?)(?=\s+\w[\w:/]*=|$)", line.strip())
    return dict(pairs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            return False
    return True


def main(argv: list[str]) -> int:
    if argv == ["install"]:
        reason = ensure_installed()
        print(reason or "SLURM is installed", file=sys.stderr if reason else sys.stdout)
        return 1 if reason else 0
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__)
        return 2
    cluster = Cluster(argv[1])
    if argv[0] == "down":
        cluster.stop()
        return 0
    reason = ensure_installed()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    cluster.start()
    print(f"export SLURM_CONF={cluster.conf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
