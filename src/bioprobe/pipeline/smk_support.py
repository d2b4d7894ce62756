"""What every workflow script shares: logging into the rule's log file, thread limits, and one
clear error line (not a traceback wall) when the input or the environment is at fault (a full
disk, a directory it may not write); a bug's traceback goes to the log once."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bioprobe.errors import BioprobeError, environment_problem
from bioprobe.pipeline.gpus import assign_job_gpus

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: libraries whose INFO lines say nothing about the job (fontTools: a line per glyph subset
#: when matplotlib writes a PDF)
QUIET_LOGGERS = ("fontTools", "matplotlib", "PIL")
#: terminal colour codes, which libraries write even when the output is a file (transformers'
#: load report)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _plain_records() -> None:
    """Every log record's message without colour codes: a log file is read, not rendered."""
    make = logging.getLogRecordFactory()
    if getattr(make, "strips_ansi", False):
        return

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = ANSI_ESCAPE.sub("", record.msg)
        return record

    factory.strips_ansi = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _configure(log_path: str | None, threads: int) -> None:
    handler: logging.Handler
    if log_path:
        # truncated once, then appended to by both the handler and the redirected fds 1 and 2
        # (O_APPEND): a handler with an offset of its own overwrote what the fds had written
        open(log_path, "w").close()
        handler = logging.FileHandler(log_path, mode="a")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _plain_records()
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # bars are noise in a log file
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    # torch sizes its thread pool from OMP_NUM_THREADS when it is first imported; importing it
    # here only to cap the pool cost every job 2-3 s, torch-free ones (tables, figures) included
    os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, threads))


def redirect_fds(log_path: str) -> None:
    """Send file descriptors 1 and 2 to the log: also catches handlers that were bound to the
    original stderr at import time (transformers') and output from C extensions."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def run_script(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run a rule's `main(snakemake)` with its log file as stdout/stderr and the logging sink.

    Only for Snakemake `script:` jobs, which run in a process of their own.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    _configure(log_path, int(getattr(snakemake, "threads", 1) or 1))
    if log_path:
        redirect_fds(log_path)
    log = logging.getLogger("bioprobe")
    try:
        # a GPU of its own for a job that asked for one (`resources: gpu=`), before CUDA starts
        assign_job_gpus(int(getattr(snakemake.resources, "gpu", 0) or 0))
        started = time.perf_counter()
        main(snakemake)
        # every job's log ends saying what it wrote: a job that has nothing else to say (a
        # plot, a collected table) leaves no empty log behind
        log.info(
            "%s done in %.1f s: %s",
            getattr(snakemake, "rule", "job"),
            time.perf_counter() - started,
            _outputs(snakemake) or "no outputs",
        )
    except BioprobeError as exc:  # the user's input is at fault: one line, no traceback
        log.error("%s", exc)
        raise SystemExit(1) from None
    except Exception as exc:
        problem = environment_problem(exc, _outputs(snakemake))
        if problem is not None:  # a full disk, a directory it may not write: one line too
            log.error("%s", problem)
        else:  # a bug: the traceback, once (re-raising would print it a second time)
            log.error("failed:\n%s", traceback.format_exc().rstrip())
        raise SystemExit(1) from None


def _outputs(snakemake: Any) -> str | None:
    """The job's outputs, to name where a write failed when the error itself does not say."""
    outputs = [str(o) for o in getattr(snakemake, "output", None) or []]
    return ", ".join(outputs) or None


def job_context(snakemake: Any):
    """The job's context from its rule: the task directory (where `labels.json` is), the model
    spec at the location `rules/common.smk` planned (`params.location`), the adapters' base
    (`params.base`), seed and attempt. The one place a job resolves its model."""
    from pathlib import Path

    from bioprobe.models import resolve_model
    from bioprobe.pipeline.jobs import job_at

    wc, params = snakemake.wildcards, snakemake.params
    return job_at(
        Path(snakemake.input.labels).parent,
        resolve_model(wc.model, params.model),
        int(wc.seed),
        location=params.location,
        base_location=params.get("base"),
        attempt=int(getattr(snakemake.resources, "attempt", 1) or 1),
    )
