"""Progress as periodic log lines (done/total, rate, ETA): readable in a rule's log file, unlike
a carriage-return progress bar."""

from __future__ import annotations

import logging
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


class Progress:
    """Call `advance(n)` as work completes; logs at most every `every` seconds, and at the end."""

    def __init__(
        self, total: int, what: str, logger: logging.Logger, unit: str = "items", every: float = 10
    ):
        self.total, self.what, self.log, self.unit, self.every = total, what, logger, unit, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            elapsed = now - self.start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self.log.info(
                "%s: %d/%d %s (%.0f%%) | %.1f %s/s | elapsed %s | ETA %s",
                self.what,
                self.done,
                self.total,
                self.unit,
                100.0 * self.done / max(1, self.total),
                rate,
                self.unit,
                format_duration(elapsed),
                format_duration(eta),
            )
