"""Terminal output of the CLI: log handler and progress bars (the library never prints).

Logs and progress go to stderr; results (summary lines, tables) to stdout.
On a terminal both use rich; otherwise logs are plain lines and progress
bars are replaced by one INFO log line per stage, so pipes and CI logs stay
readable and a failing command still prints exactly one error line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ProgressCallback", "progress_bar", "setup_logging", "stderr_console"]

log = logging.getLogger("saltvol_cli")

ProgressCallback = Callable[..., None]  # progress(done, total, stage="")

_settings = {"verbosity": 0}
_console: list[Console] = []


class _OthersAtLeast(logging.Filter):
    """Let other libraries' records through from ``level`` up; saltvol's own (and Python warnings) as their loggers allow."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.split(".")[0] in ("saltvol", "saltvol_cli") or record.name == "py.warnings"
        return ours or record.levelno >= self.level


class _PlainFormatter(logging.Formatter):
    """``saltvol: warning: message`` (with the logger name from -vv on)."""

    def __init__(self, *, with_name: bool) -> None:
        super().__init__()
        self.with_name = with_name

    def format(self, record: logging.LogRecord) -> str:
        name = f"{record.name}: " if self.with_name else ""
        text = f"saltvol: {record.levelname.lower()}: {name}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def stderr_console() -> Console:
    """The one rich console on stderr, shared by the log handler and progress bars."""
    if not _console:
        from rich.console import Console

        _console.append(Console(stderr=True))
    return _console[0]


def setup_logging(verbosity: int) -> None:
    """Send log records to stderr: WARNING by default, -v INFO, -vv DEBUG, -q ERROR only.

    saltvol's own loggers follow the verbosity; other libraries (dask,
    distributed, torch) stay at WARNING unless -vvv.  Python warnings are
    routed through logging and shown from -v on.
    """
    _settings["verbosity"] = verbosity
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_saltvol", False)]:
        root.removeHandler(handler)
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=stderr_console(), show_path=verbosity >= 2, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter(with_name=verbosity >= 2))
    handler._saltvol = True  # type: ignore[attr-defined]
    if verbosity < 3:
        # distributed sets its own loggers to INFO, and their records reach this handler whatever the root level.
        handler.addFilter(_OthersAtLeast(max(level, logging.WARNING)))
    root.addHandler(handler)
    root.setLevel(level if verbosity >= 3 else max(level, logging.WARNING))
    for name in ("saltvol", "saltvol_cli"):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if verbosity >= 1 else logging.ERROR)


@contextmanager
def progress_bar(description: str = "") -> Iterator[ProgressCallback]:
    """A ``progress(done, total, stage="")`` callback drawing one bar on stderr.

    The stage name is shown next to the bar; when ``done`` goes back (a new
    epoch, a new pass) the bar and its clock restart.  Drawn only when stderr
    is a terminal and ``-q`` was not given; otherwise each new stage is
    logged at INFO.
    """
    seen: set[str] = set()
    if _settings["verbosity"] < 0 or not sys.stderr.isatty():

        def report(done: int, total: int, stage: str = "") -> None:
            if stage not in seen:
                seen.add(stage)
                log.info("%s: %d/%d", " ".join(filter(None, (description, stage))) or "progress", done, total)

        yield report
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr_console(),
    )
    task = bar.add_task(description, total=None)
    last = {"done": -1}

    def draw(done: int, total: int, stage: str = "") -> None:
        if last["done"] < 0:
            bar.start()  # only once work begins: an early error leaves no empty bar behind
        label = " ".join(filter(None, (description, stage)))
        if done < last["done"]:
            bar.reset(task, total=total, completed=done, description=label)
        else:
            bar.update(task, total=total, completed=done, description=label)
        last["done"] = done

    try:
        yield draw
    finally:
        if last["done"] >= 0:
            bar.stop()
