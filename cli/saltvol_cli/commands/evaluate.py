"""``saltvol evaluate``: the TGS metric of a model on its validation fold."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from ..options import device_opt, given, model_opt

BINS = ("overall", "empty", "<10%", "10-50%", ">50%")


@click.command("evaluate")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="TGS data in Kaggle's layout, with masks.")
@model_opt
@click.option("--all", "all_tiles", is_flag=True, default=False, help="Score every tile, not just the validation fold.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Read only the first N tiles (as the model was trained with --limit).")
@device_opt
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the report as JSON.")
def command(
    data_dir: Path, model: Path | None, all_tiles: bool, limit: int | None, device: str | None, as_json: bool
) -> None:
    """Score a model with the TGS metric, by salt coverage.

    Scores are given at threshold 0.5 and at the model's tuned threshold and
    minimum salt area, on the validation fold the model was trained without.

    \b
    Example:
      saltvol evaluate --data /data/tgs --model runs/r18/model.safetensors
    """
    from saltvol.train.predict import evaluate

    report = evaluate(data_dir, all_tiles=all_tiles, **given(model=model, limit=limit, device=device))
    if as_json:
        click.echo(json.dumps(_nan_to_none(report), indent=2, allow_nan=False))
        return
    _print_table(report)


def _nan_to_none(value: Any) -> Any:
    """Empty bins score NaN, which is not JSON: write null."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def format_score(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    tuned = f"tuned (t={report['threshold']:.2f}, min area {report['min_area']})"
    table = Table(title=f"TGS metric, {report['subset']} ({report['tiles']} tiles)", title_justify="left")
    table.add_column("coverage")
    table.add_column("tiles", justify="right")
    table.add_column("t=0.5", justify="right")
    table.add_column(tuned, justify="right")
    for name in BINS:
        table.add_row(name, str(report["counts"][name]), format_score(report["at_0.5"][name]), format_score(report["tuned"][name]))
    Console().print(table)
