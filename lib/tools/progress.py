"""A progress bar on stderr for long command-line work (demo generation, bench)."""

from __future__ import annotations

import sys
import time


def progress_bar(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-6)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
                     f"({rate:,.0f}/s)")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
