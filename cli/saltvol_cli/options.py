"""Options and parameter types shared by the saltvol commands.

Every option defaults to None (or off) so that a command passes on only what
the user typed and the library's own signature stays the single source of
defaults (see :func:`given`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "ChunkSpec",
    "CommaList",
    "ScaleType",
    "batch_size_opt",
    "byte_location_opts",
    "device_opt",
    "given",
    "iline_opt",
    "model_opt",
    "output_opt",
    "overwrite_opt",
    "resume_opt",
    "xline_opt",
]

F = TypeVar("F", bound=Callable[..., Any])

DIMS = ("iline", "xline", "sample", "cdp")


def given(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments the user actually gave (drops None)."""
    return {k: v for k, v in kwargs.items() if v is not None}


class ChunkSpec(click.ParamType):
    """Chunk sizes per dimension: ``iline=64,xline=64,sample=-1`` (-1 = whole axis; ``cdp`` for 2D lines)."""

    name = "chunks"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, int]:
        if isinstance(value, dict):
            return value
        chunks: dict[str, int] = {}
        for item in str(value).split(","):
            key, sep, size = (part.strip() for part in item.partition("="))
            if not sep or key not in DIMS:
                self.fail(
                    f"{item.strip()!r} is not DIM=SIZE with DIM one of {', '.join(DIMS)}; "
                    "write e.g. iline=64,xline=64,sample=-1",
                    param,
                    ctx,
                )
            if key in chunks:
                self.fail(f"{key!r} is given twice in {value!r}", param, ctx)
            try:
                number = int(size)
            except ValueError:
                number = 0
            if number < 1 and number != -1:
                self.fail(f"chunk size {size!r} for {key} must be a positive integer or -1 (whole axis)", param, ctx)
            chunks[key] = number
        return chunks


class CommaList(click.ParamType):
    """A comma-separated list of names from a fixed set, e.g. ``iline,xline``."""

    name = "list"

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + ",".join(self.choices) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        items = tuple(v.strip() for v in str(value).split(",") if v.strip())
        bad = [v for v in items if v not in self.choices]
        if bad or not items:
            self.fail(f"{value!r} is not a comma-separated list of {', '.join(self.choices)}", param, ctx)
        return items


class ScaleType(click.ParamType):
    """``auto`` or a positive resampling factor."""

    name = "scale"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[auto|FACTOR]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | float:
        if value == "auto" or isinstance(value, float):
            return value
        try:
            factor = float(value)
        except ValueError:
            factor = 0.0
        if not factor > 0:
            self.fail(f"{value!r} is neither 'auto' nor a positive number", param, ctx)
        return factor


iline_opt = click.option(
    "--iline", type=int, default=None, metavar="BYTE",
    help="Trace-header byte of the inline number (default: 189, or autodetected when reading).",
)
xline_opt = click.option(
    "--xline", type=int, default=None, metavar="BYTE",
    help="Trace-header byte of the crossline number (default: 193, or autodetected when reading).",
)


def byte_location_opts(f: F) -> F:
    """``--iline BYTE --xline BYTE``."""
    return iline_opt(xline_opt(f))


overwrite_opt = click.option("--overwrite", is_flag=True, default=False, help="Replace existing output.")
resume_opt = click.option("--resume", is_flag=True, default=False, help="Continue an interrupted run into the same output.")
model_opt = click.option(
    "--model", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PATH",
    help="Model file written by 'saltvol train' (default: the bundled model).",
)
device_opt = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
    help="Where to run the network (default: auto = cuda if available).",
)
batch_size_opt = click.option("--batch-size", type=click.IntRange(min=1), default=None, metavar="N", help="Tiles per batch.")


def output_opt(help_text: str, *, metavar: str = "PATH") -> Callable[[F], F]:
    """A required ``-o/--output``."""
    return click.option(
        "-o", "--output", required=True, metavar=metavar, type=click.Path(path_type=Path), help=help_text
    )
