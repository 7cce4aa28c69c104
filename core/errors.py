"""User-facing errors and the wrapper every stage CLI runs under.

A ``PipelineError`` is a problem with the user's input or set-up: it is printed as a
plain message (file, column, rows, what was expected) and the process exits with
status 2, never with a traceback.  Anything else is a bug in the pipeline and keeps
its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

from core import STARTED

__all__ = ["PipelineError", "DataError", "run_cli"]


class PipelineError(Exception):
    """An error the user can fix; its message is all they should need to read."""


class DataError(PipelineError):
    """Input data that breaks the DSG17 contract."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _profile() -> None:
    """Append this stage's wall and CPU seconds and peak memory to ``$DSG_PROFILE`` (set by `make bench`)."""
    path = os.environ.get("DSG_PROFILE")
    if not path:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    record = {
        "argv": [os.path.basename(sys.argv[0]).removesuffix(".py"), *sys.argv[1:]],
        "module": getattr(sys.modules.get("__main__"), "__spec__", None) and sys.modules["__main__"].__spec__.name,
        "wall": round(time.perf_counter() - STARTED, 3),
        "cpu": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    # One short line per process, appended in one write: safe with parallel stages (make -j2).
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def run_cli(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; turn user-fixable errors and Ctrl-C into clean exits."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # SIGTERM would otherwise end the process without running ``finally`` blocks, and
    # the atomic writers rely on those to remove their temporary files.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        main()
        _profile()
    except PipelineError as exc:
        print(f"\nERROR: {exc}\n", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\nInterrupted: nothing half-written was kept; run the same command again to resume.", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`make recommend ... | head`): it has what it asked for, so stop
        # quietly with success.  stdout goes to /dev/null so the interpreter's last flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
