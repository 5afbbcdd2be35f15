"""Train a tiny salt model on a few TGS tiles, then use it on a synthetic volume.

This is the whole training path in miniature (minutes on a CPU). The real
model is trained the same way with `saltvol train` and the defaults; see
docs/model.md.

    python examples/train_tiny.py --data ../shared/data/tgs [--limit 64] [--epochs 2] [--synthetic-tiles 16] [--ensemble]

``--synthetic-tiles`` mixes in tiles cut from ``saltvol synth`` volumes at
reflector periods of 8-30 samples, prepared the way ``segment`` prepares real
sections (validation stays on TGS tiles).  ``--ensemble`` trains a second
network with another decoder on the same split and combines the two into one
int8 model file (what ``saltvol ensemble`` does), which ``segment`` then uses
like any model.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import saltvol
from saltvol.model import ModelConfig
from saltvol.synth import make_volume
from saltvol.train.ensemble import combine_models
from saltvol.train.loop import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="TGS data folder (Kaggle layout)")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--synthetic-tiles", type=int, default=16)
    parser.add_argument("--ensemble", action="store_true", help="also train a second network and combine the two")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="saltvol-train-")))
    args = parser.parse_args()

    config = TrainConfig(
        model=ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16)),
        epochs=args.epochs,
        limit=args.limit,
        k_folds=4,
        batch_size=8,
        synthetic_tiles=args.synthetic_tiles,
    )
    model_path = train(args.data, args.out / "run", config, on_epoch=lambda r: print(r))
    print(f"model: {model_path}")
    if args.ensemble:
        second = replace(config, model=replace(config.model, decoder_channels=(16, 16, 16, 16, 16)))
        second_path = train(args.data, args.out / "run2", second, on_epoch=lambda r: print(r))
        model_path, report = combine_models([model_path, second_path], args.data, args.out / "ensemble.safetensors", limit=args.limit)
        print(f"ensemble: {model_path} (validation score {report['overall']:.3f})")
    prob = saltvol.segment(make_volume((16, 16, 96), seed=1), model=model_path, tile_size=64).compute()
    print(f"probabilities in [{float(prob.min()):.3f}, {float(prob.max()):.3f}]")


if __name__ == "__main__":
    main()
