"""Combine trained models into one ensemble model file.

The members must have been trained on the same split and normalisation
(same data, fold, seed, input size and scale): their raw probabilities are
averaged, and one calibration, threshold and minimum area are fitted to that
mean on the validation fold, as ``saltvol train`` does for a single network.
The result is an ordinary model file (``load_model``, ``segment``,
``predict-images`` and ``evaluate`` take it as they take one network), stored
as int8 by default so that two networks fit in the package's 30 MB.  An
ensemble file given as a member contributes its networks, so a shipped
ensemble can grow by one network without the files it was made from (int8
weights stored again as int8 keep their values: each channel's scale is set by
its largest weight, which storage keeps).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._weight_storage import PRECISIONS, Precision, as_stored
from ..errors import InputError, OutputExistsError, OutputPathError
from ..model import MAX_MEMBERS, ModelConfig, ModelMeta, network_from_state, read_model_file, save_model
from .data import load_tgs, stratified_folds
from .evaluate import tune_on_validation

__all__ = ["combine_models"]

log = logging.getLogger(__name__)

#: Metadata fields that must agree between members: they decide which tiles were validation and how inputs are scaled.
_SHARED_FIELDS = (
    "data_fingerprint", "fold", "k_folds", "split_seed", "train_size", "input_mode", "input_scale",
    "image_mean", "image_std", "image_center", "image_spread", "period_px", "tta",
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6)
    return a == b


def _check_members(paths: list[Path], metas: list[ModelMeta]) -> None:
    first = metas[0]
    for path, meta in zip(paths[1:], metas[1:]):
        for name in _SHARED_FIELDS:
            if not _same(getattr(first, name), getattr(meta, name)):
                raise InputError(
                    f"{path} was trained with {name}={getattr(meta, name)!r} but {paths[0]} with "
                    f"{getattr(first, name)!r}; ensemble members must share data, split and normalisation"
                )


def _networks(
    paths: list[Path], read: list[tuple[dict[str, Any], ModelMeta]]
) -> tuple[list[torch.nn.Module], tuple[ModelConfig, ...]]:
    """Every network the files hold (an ensemble file gives its members), and their configs.

    Refuses more than :data:`MAX_MEMBERS` networks (before any is built), and a
    network given in two files (say an ensemble and one of its members), which
    would silently count double.  Networks within one file are not compared: that
    file was made as it is.
    """
    count = sum(len(meta.networks) for _, meta in read)
    if count > MAX_MEMBERS:
        raise InputError(f"the models hold {count} networks, more than an ensemble may ({MAX_MEMBERS}); pass fewer")
    networks: list[torch.nn.Module] = []
    configs: list[ModelConfig] = []
    sources: list[tuple[int, str]] = []  # (file index, name in messages)
    for index, (path, (state, meta)) in enumerate(zip(paths, read)):
        network = network_from_state(path, state, meta)
        if meta.members:
            networks += list(network.members)
            configs += meta.members
            sources += [(index, f"{path} (member {i})") for i in range(len(meta.members))]
        else:
            networks.append(network)
            configs.append(meta.config)
            sources.append((index, str(path)))
    for j in range(len(networks)):
        for i in range(j):
            if sources[i][0] != sources[j][0] and configs[i] == configs[j] and _same_weights(networks[i], networks[j]):
                raise InputError(f"{sources[j][1]} is the same network as {sources[i][1]}; pass each network once")
    return networks, tuple(configs)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two networks of one config hold the same weights up to storage rounding.

    int8 storage keeps one scale per output channel (the channel's largest weight
    / 127), so two copies of a network differ by at most one such step per channel,
    and fp16 by a relative 1e-3 (or flush tiny values to zero: the 1e-4 floor);
    weights trained apart differ by far more.
    """
    state_a, state_b = a.state_dict(), b.state_dict()
    for key, x in state_a.items():
        y = state_b[key]
        if not x.is_floating_point() or x.numel() <= 1:
            continue
        x, y = x.float().reshape(x.shape[0], -1), y.float().reshape(y.shape[0], -1)
        step = torch.maximum(x.abs().amax(1), y.abs().amax(1)) / 127 * 1.01 + 1e-4
        if bool(((x - y).abs().amax(1) > step).any()):
            return False
    return True


def combine_models(
    models: list[str | os.PathLike],
    data_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    precision: Precision = "int8",
    name: str = "saltvol-unet-ensemble",
    overwrite: bool = False,
    limit: int | None = None,
) -> tuple[Path, dict[str, float]]:
    """Write one model file that averages the probabilities of ``models``.

    Parameters
    ----------
    models : list of paths
        Two or more model files (``.safetensors`` or a run's ``best.pt``); an
        ensemble file contributes each of its networks.
    data_dir : path
        The TGS folder the members were trained on: their shared validation
        fold is where the ensemble is calibrated and its threshold tuned.
    output : path
        The ensemble's ``.safetensors`` file.
    precision : {"int8", "fp16", "fp32"}, default "int8"
        Weight storage; int8 costs the score nothing measurable (docs/model.md).
    name : str
        Stored in the metadata and in provenance of cubes made with it.
    overwrite : bool, default False
    limit : int, optional
        Read only the first ``limit`` tiles (as the members were trained with ``--limit``).

    Returns
    -------
    (Path, dict)
        The file written and the TGS metric of the ensemble on the validation
        fold at its tuned settings (``overall`` and per coverage bin).
    """
    paths = [Path(m) for m in models]
    output = Path(output)
    if len(paths) < 2:
        raise InputError(f"an ensemble needs at least two models, got {len(paths)}; pass two or more model files")
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}; choose one of them")
    for path in paths:
        if not path.is_file():
            raise InputError(f"model {str(path)!r} does not exist or is not a file; check the MODEL arguments")
    if output.is_dir() or not output.parent.is_dir() and output.parent.exists():
        raise OutputPathError(f"-o {output} is a folder or inside a file; pass a path for the new .safetensors file")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; pass --overwrite to replace it or choose another -o")
    if any(output.resolve() == p.resolve() for p in paths if p.exists()):
        raise InputError(f"-o {output} is one of the members; write the ensemble to a new file")
    read = [read_model_file(p) for p in paths]
    metas = [meta for _, meta in read]
    _check_members(paths, metas)
    networks, configs = _networks(paths, read)  # refuses a network given twice before the data are read

    data = load_tgs(data_dir, limit=limit)
    if data.masks is None:
        raise InputError(f"{str(data_dir)!r} has no masks (train/masks or train.csv); tuning the ensemble needs them")
    first = metas[0]
    if first.data_fingerprint is None:
        log.warning("the models record no training data; the validation fold of %s may hold tiles they trained on", data_dir)
    elif first.data_fingerprint != data.fingerprint:
        raise InputError(
            f"{str(data_dir)!r} holds other tiles than the members were trained on (data fingerprint differs); "
            "pass the --data and --limit they were trained with, so that the validation fold is one they never saw"
        )
    folds = stratified_folds(data.coverage, k=first.k_folds, seed=first.split_seed)
    val = folds == first.fold
    if not val.any():
        raise InputError(f"validation fold {first.fold} of {str(data_dir)!r} is empty; pass more tiles (a larger --limit)")
    from ..ensemble import EnsembleNetwork

    ensemble = EnsembleNetwork(networks)
    # Tune the weights the file will hold: int8 storage moves probabilities a little, and the stored threshold
    # and score must be those of the weights that are loaded.
    as_stored(ensemble, precision)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ensemble.to(device).to(memory_format=torch.channels_last)

    meta = replace(first, config=configs[0], members=configs, name=name, epochs=None, saltvol_version=__version__)
    log.info("tuning the ensemble of %s on %d validation tiles", " + ".join(c.encoder for c in configs), int(val.sum()))
    meta, report = tune_on_validation(ensemble, meta, data.images[val], data.masks[val], device=device)
    return save_model(ensemble.cpu(), meta, output, precision=precision), report
