"""Fine-tuning on several processes: the launch (`run`, in the job) and each rank's entry
point (`python -m bioprobe.training.launch <launch dir>/arguments.json`, started by torchrun).

The job writes its `finetune` arguments to a launch directory next to its checkpoints and runs
`torchrun --standalone --nproc-per-node N` on this module; every rank calls the same
`finetune` (bioprobe.training.finetune), which trains through the Trainer's DDP or FSDP, and
rank 0 alone scores and saves the model, metrics and model card, then writes the metrics to
`result.json` for the job. Output: rank 0 writes `rank0.log`, which the job copies into its own
log as it grows (progress in order, never two ranks' lines interleaved); rank k writes
`rank<k>.log` and torchrun itself `torchrun.log`, all kept in the launch directory when a rank
fails. A rank that fails writes one line to `rank<k>.error`; the job fails with the first of
those lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bioprobe.errors import BioprobeError, environment_problem
from bioprobe.io import read_json, write_json
from bioprobe.models import ModelSpec
from bioprobe.pipeline.jobs import JobContext
from bioprobe.settings import TrainingSettings
from bioprobe.training.distributed import LAUNCH_DIR_ENV

log = logging.getLogger("bioprobe.train")

ARGUMENTS = "arguments.json"
RESULT = "result.json"
#: how often the job copies rank 0's new output into its log
POLL_SECONDS = 0.5
#: how long after rank 0 wrote its result the other ranks may take to exit (they are done
#: before rank 0 starts scoring): a rank that hangs on its way out is stopped, the run stands
EXIT_GRACE_SECONDS = 60


def launch_dir(checkpoint_dir: str | Path) -> Path:
    """Beside the checkpoints, not in them: a run of other settings wipes those."""
    checkpoint_dir = Path(checkpoint_dir)
    return checkpoint_dir.with_name(checkpoint_dir.name + ".launch")


def run(job: JobContext, training: TrainingSettings, **finetune_kwargs: Any) -> dict:
    """`finetune(job, training=training, **finetune_kwargs)` on `training.processes` ranks;
    returns rank 0's result. One BioprobeError naming the rank and its error if one fails."""
    import torch

    n = training.processes
    cuda = torch.cuda.is_available()
    if cuda and torch.cuda.device_count() < n:
        raise BioprobeError(
            f"training.processes is {n} (one process per GPU) but this job sees "
            f"{torch.cuda.device_count()} GPU(s): give it {n} (resources gpu={n}; the GPU "
            f"profile's --resources gpu=, SLURM --gpus) or lower training.processes"
        )
    where = launch_dir(finetune_kwargs["checkpoint_dir"])
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    write_json(where / ARGUMENTS, _arguments(job, training, finetune_kwargs))
    # each rank gets its share of the job's threads (one or more)
    threads = max(1, torch.get_num_threads() // n)
    env = {**os.environ, LAUNCH_DIR_ENV: str(where), "OMP_NUM_THREADS": str(threads)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
        "-m", __name__, str(where / ARGUMENTS),
    ]  # fmt: skip
    log.info(
        "fine-tuning on %d processes (%s, %s backend, %d thread(s) each): %s",
        n, training.strategy, "nccl" if cuda else "gloo", threads, " ".join(command[1:]),
    )  # fmt: skip
    with (where / "torchrun.log").open("wb") as torchrun_log:
        proc = subprocess.Popen(command, env=env, stdout=torchrun_log, stderr=subprocess.STDOUT)
        with _terminated_with(proc):
            code = _stream(proc, where)
    if code not in (0, None):
        raise BioprobeError(_failure(where, n, code))
    result = read_json(where / RESULT)
    if code == 0:  # None: a rank hung on its way out, its log kept
        shutil.rmtree(where, ignore_errors=True)
    return result


def _arguments(job: JobContext, training: TrainingSettings, kwargs: dict[str, Any]) -> dict:
    return {
        "job": {**dataclasses.asdict(job), "task_dir": str(job.task_dir)},
        "training": training.as_dict(),
        **{k: _plain(v) for k, v in kwargs.items()},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _stream(proc: subprocess.Popen, where: Path) -> int | None:
    """Copy rank 0's output into this process's stdout (the job's log) as it grows, until
    torchrun exits; its exit code (None when a rank still runs `EXIT_GRACE_SECONDS` after rank
    0 wrote its result: the caller stops it)."""
    offset, finished = 0, None
    sys.stdout.flush()
    while True:
        code = proc.poll()
        offset = _copy_new(where / "rank0.log", offset)
        if code is not None:
            return code
        if finished is None and (where / RESULT).exists():
            finished = time.monotonic()
        if finished is not None and time.monotonic() - finished > EXIT_GRACE_SECONDS:
            log.warning(
                "a rank has not exited %d s after rank 0 saved the run: stopping it (its "
                "log: %s)", EXIT_GRACE_SECONDS, where,
            )  # fmt: skip
            return None
        time.sleep(POLL_SECONDS)


def _copy_new(path: Path, offset: int) -> int:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return offset
    if chunk:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return offset + len(chunk)


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated()


@contextlib.contextmanager
def _terminated_with(proc: subprocess.Popen) -> Iterator[None]:
    """Stop torchrun (which stops its ranks) when the job is cancelled (SIGTERM, Ctrl-C) or fails:
    ranks left behind would hold the GPUs. (Python handles signals in the main thread only; from
    another thread an exception still stops them.)"""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        yield
    except _Terminated:
        raise SystemExit("terminated: stopped the fine-tuning ranks") from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _failure(where: Path, n: int, code: int) -> str:
    """One line: the first rank's error (the others usually fail because it did), else
    torchrun's exit code."""
    errors = sorted(where.glob("rank*.error"), key=lambda p: p.stat().st_mtime)
    if errors:
        first = errors[0]
        which = first.stem  # rank<k>
        line = first.read_text(encoding="utf-8").strip()
        return (
            f"fine-tuning on {n} processes failed: {which.replace('rank', 'rank ')}: {line} "
            f"(every rank's log: {where})"
        )
    return (
        f"fine-tuning on {n} processes failed: torchrun exited with code {code} and no rank "
        f"reported an error (killed: out of memory, a signal?); see {where}/torchrun.log and "
        f"the ranks' logs there"
    )


# --------------------------------------------------------------------------------------------
# a rank


def _rank_job(fields: dict) -> JobContext:
    job = dict(fields)
    spec = ModelSpec(**job.pop("spec"))
    return JobContext(**{**job, "task_dir": Path(job["task_dir"]), "spec": spec})


def _log_to(path: Path) -> None:
    """This rank's stdout, stderr and logging into `path` (appended by every writer)."""
    from bioprobe.pipeline.smk_support import LOG_FORMAT, QUIET_LOGGERS, redirect_fds

    redirect_fds(str(path))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """One rank: the job's `finetune` under torchrun's environment (RANK, WORLD_SIZE, ...)."""
    argv = sys.argv[1:] if argv is None else argv
    arguments_file = Path(argv[0])
    where = arguments_file.parent
    rank = int(os.environ["RANK"])
    _log_to(where / f"rank{rank}.log")
    # `kill -USR1 <pid>` writes where each thread of a hung rank is into its log
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import torch

        from bioprobe.training.distributed import backend
        from bioprobe.training.finetune import finetune

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        # the process group before any model loads: the Trainer (accelerate) joins this one
        torch.distributed.init_process_group(backend(cuda))
        arguments = read_json(arguments_file)
        training = TrainingSettings.from_config(arguments.pop("training"), "training")
        job = _rank_job(arguments.pop("job"))
        metrics = finetune(job, training=training, **arguments)
        if rank == 0:
            write_json(where / RESULT, metrics)
    except BaseException as exc:
        # as a job reports it (smk_support.run_script): the user's fault or the machine's (a
        # full disk) in one line, a bug's traceback in the rank's log
        problem = exc if isinstance(exc, BioprobeError) else environment_problem(exc, None)
        if problem is not None:
            line = str(problem)
            log.error("%s", problem)
        else:
            line = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            log.error("failed:\n%s", traceback.format_exc().rstrip())
        (where / f"rank{rank}.error").write_text(line + "\n", encoding="utf-8")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
