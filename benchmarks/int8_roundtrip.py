"""What int8 weight storage costs a model: write the model again with int8 weights and print the sizes.

A second network for an ensemble must fit beside the shipped one inside the 30 MB limit, and a
resnet18 U-Net is 25 MB in fp16.  ``save_model(..., precision="int8")`` stores every weight
tensor of two or more dimensions as int8 with one scale per output channel (biases and norm
statistics stay fp16); loading multiplies them back to float32.  Score the copy against the
original with ``benchmarks/compare_models.py``.

Usage::

    python benchmarks/int8_roundtrip.py saltvol/weights/saltvol-unet.safetensors /tmp/int8.safetensors
    python benchmarks/compare_models.py saltvol/weights/saltvol-unet.safetensors /tmp/int8.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="a saltvol .safetensors model")
    p.add_argument("out", type=Path, help="where to write the int8 copy")
    args = p.parse_args(argv)

    from saltvol.model import load_model, save_model

    model = load_model(args.model, device="cpu")
    save_model(model.network, model.meta, args.out, precision="int8")
    print(f"{'storage':<12}{'MB':>8}")
    print(f"{'as given':<12}{args.model.stat().st_size / 1e6:>8.2f}")
    print(f"{'int8':<12}{args.out.stat().st_size / 1e6:>8.2f}")
    print(f"wrote {args.out}; score it with benchmarks/compare_models.py {args.model} {args.out}")


if __name__ == "__main__":
    main()
