"""What every workflow script shares: logging into the rule's log file, thread limits, and one
clear error line (not a traceback wall) when the input is at fault."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from bioprobe.errors import BioprobeError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure(log_path: str | None, threads: int) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def run_script(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run a rule's `main(snakemake)` with its log file as stdout/stderr and the logging sink."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    _configure(log_path, int(getattr(snakemake, "threads", 1) or 1))
    stream = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
    with contextlib.ExitStack() as stack:
        if stream is not None:
            stack.callback(stream.close)
            stack.enter_context(contextlib.redirect_stdout(stream))
            stack.enter_context(contextlib.redirect_stderr(stream))
        try:
            main(snakemake)
        except BioprobeError as exc:
            logging.getLogger("bioprobe").error("%s", exc)
            print(f"bioprobe error: {exc}", file=sys.__stderr__)
            raise SystemExit(1) from None
        except Exception:
            logging.getLogger("bioprobe").error("failed:\n%s", traceback.format_exc())
            raise
