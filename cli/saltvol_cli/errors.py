"""The one place where exceptions become messages and exit codes.

Contract (stderr gets exactly one line, no traceback, unless ``-v`` asks for it):

=====================================  ==============================================================  ====
what                                   message                                                         exit
=====================================  ==============================================================  ====
success                                (nothing)                                                       0
:class:`saltvol.errors.SaltvolError`   ``saltvol: error: <message>``                                   2
click usage error (bad option/value)   ``saltvol: error: <message> (see 'saltvol CMD --help')``        2
OSError from the system (disk full)    ``saltvol: error: <message>``                                   2
Ctrl-C, SIGTERM                        ``saltvol: interrupted; rerun with --resume to continue``       130
anything else (a bug)                  ``saltvol: internal error: <type>: <msg> (run with -v ...)``    1
=====================================  ==============================================================  ====

Commands without ``--resume`` say only ``saltvol: interrupted``.  With
``-v`` an internal error prints its traceback first; with ``-vv`` so does a
saltvol error.
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

__all__ = ["Interrupted", "Terminated", "handle", "install_signal_handlers", "set_verbosity"]

EXIT_OK, EXIT_INTERNAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

_state: dict[str, Any] = {"verbosity": 0, "resumable": True, "command_path": "saltvol"}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (handled like Ctrl-C)."""


class Interrupted(Exception):
    """A KeyboardInterrupt carried out of click (which would otherwise turn it into Abort)."""


def set_verbosity(verbosity: int) -> None:
    """Remember ``-v`` minus ``-q`` so the handler knows whether to print tracebacks."""
    _state["verbosity"] = verbosity


def set_resumable(resumable: bool) -> None:
    """Whether the running command has ``--resume`` (changes the interrupt message)."""
    _state["resumable"] = resumable


def reset(command_path: str = "saltvol") -> None:
    """Forget the previous run (tests run many commands in one process)."""
    _state.update(verbosity=0, resumable=True, command_path=command_path)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install_signal_handlers() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns a function that undoes it."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _say(line: str) -> None:
    click.echo(line, err=True)


def handle(exc: BaseException) -> int:
    """Print the one-line report of ``exc`` on stderr and return the exit code."""
    from saltvol.errors import SaltvolError

    verbosity = _state["verbosity"]
    if isinstance(exc, (KeyboardInterrupt, Interrupted, click.exceptions.Abort)):
        hint = "; rerun with --resume to continue" if _state["resumable"] else ""
        _say(f"saltvol: interrupted{hint}")
        return EXIT_INTERRUPTED
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and exc.ctx is not None:
        click.echo(exc.ctx.get_help())  # plain `saltvol` shows the help
        return EXIT_OK
    if isinstance(exc, click.UsageError):
        path = exc.ctx.command_path if exc.ctx is not None else _state["command_path"]
        hint = f" (see '{path} --help')"
        _say(f"saltvol: error: {_one_line(exc.format_message())}{hint}")
        return EXIT_ERROR
    if isinstance(exc, click.ClickException):
        _say(f"saltvol: error: {_one_line(exc.format_message())}")
        return EXIT_ERROR
    if isinstance(exc, SaltvolError):
        if verbosity >= 2:
            traceback.print_exception(exc, file=sys.stderr)
        _say(f"saltvol: error: {_one_line(str(exc))}")
        return EXIT_ERROR
    if isinstance(exc, OSError) and exc.strerror:
        # The system refused (disk full, permission denied): not a bug in saltvol.
        if verbosity >= 1:
            traceback.print_exception(exc, file=sys.stderr)
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"saltvol: error: {_one_line(exc.strerror)}{where}")
        return EXIT_ERROR
    if verbosity >= 1:
        traceback.print_exception(exc, file=sys.stderr)
        _say(f"saltvol: internal error: {type(exc).__name__}: {_one_line(str(exc))}")
    else:
        _say(
            f"saltvol: internal error: {type(exc).__name__}: {_one_line(str(exc))} (run with -v for the traceback)"
        )
    return EXIT_INTERNAL
