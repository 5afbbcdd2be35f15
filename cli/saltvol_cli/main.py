"""The ``saltvol`` command: a group of thin subcommands over the saltvol library.

Each subcommand lives in its own module under ``saltvol_cli.commands`` and
exposes a click command named ``command``; adding one is one line in
:data:`COMMANDS`.  Nothing heavy (torch, dask, xarray) is imported until a
command runs, so ``saltvol --help`` is fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

import click

from . import errors

__all__ = ["COMMANDS", "cli", "main"]

#: Subcommand modules under ``saltvol_cli.commands``, in --help order.
COMMANDS: list[str] = [
    "synth",
    "convert",
    "segment",
    "train",
    "evaluate",
    "ensemble",
    "predict_images",
    "info",
    "export",
    "preview",
    "bodies",
    "surfaces",
]


def _version() -> str:
    try:
        return version("saltvol")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


class SaltvolGroup(click.Group):
    """A click group whose errors go through :func:`saltvol_cli.errors.handle`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # registration order, not alphabetical

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # click would print a blank line and raise Abort
            raise errors.Interrupted() from e

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        name = next((a for a in argv if a in self.commands), None)
        errors.reset(f"saltvol {name}" if name else "saltvol")
        restore = errors.install_signal_handlers()
        try:
            rv = super().main(args, prog_name or "saltvol", complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0  # an int here is click's exit code (--help, --version)
        except BaseException as e:
            if isinstance(e, SystemExit):
                raise
            code = errors.handle(e)
        finally:
            restore()
        if standalone_mode:
            sys.exit(code)
        return code


@click.group("saltvol", cls=SaltvolGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), "--version", prog_name="saltvol", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug); -v also shows tracebacks.")
@click.option("-q", "--quiet", count=True, help="Less output: errors only, no progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Find salt bodies in 3D seismic volumes with a U-Net trained on TGS tiles.

    \b
    A first run on a synthetic volume:
      saltvol synth -o synthetic.sgy --truth truth.zarr
      saltvol convert synthetic.sgy -o synthetic.zarr
      saltvol segment synthetic.zarr -o salt.zarr
    """
    from .ui import setup_logging

    verbosity = verbose - quiet
    errors.set_verbosity(verbosity)
    setup_logging(verbosity)
    ctx.obj = {"verbosity": verbosity}
    sub = ctx.invoked_subcommand and cli.commands.get(ctx.invoked_subcommand)
    if sub:
        errors.set_resumable(any(p.name == "resume" for p in sub.params))


for _name in COMMANDS:
    cli.add_command(import_module(f"saltvol_cli.commands.{_name}").command)


def main() -> NoReturn:
    """Entry point of the ``saltvol`` console script: run the command, then end the process at once.

    Python's own teardown after a command unloads torch and frees every object
    one by one: 0.6 s after ``import torch`` alone and about 1.4 s once a model
    has run, on the 2-core development machine (a tenth of a small ``saltvol
    segment``). Nothing is pending when a command returns: outputs are in
    place, clusters closed, progress bars stopped. So the console script
    flushes logging and its streams and leaves with ``os._exit``. ``cli.main``
    (tests, other programs) and the library end the usual way.
    """
    try:
        code = cli.main(prog_name="saltvol", standalone_mode=False)
    except SystemExit as e:  # sys.exit(...) inside a command
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (saltvol info | head) has nothing left to receive
            pass
    os._exit(code)
