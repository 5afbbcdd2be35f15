"""What int8 weight storage would cost a model: write a copy whose weights went through int8 and back.

A second network for an ensemble must fit beside the shipped one inside the 30 MB limit, and a
resnet18 U-Net is 25 MB in fp16.  Stored as int8 with one scale per output channel it would be
about half that.  This script rounds every weight tensor of a model (2-D and up; biases and
norm statistics stay fp16) to int8 per output channel, writes the dequantized copy as fp16
safetensors with the same metadata, and prints the sizes; score the copy against the original
with ``benchmarks/compare_models.py``.  It measures, it does not ship: no int8 loader exists yet.

Usage::

    python benchmarks/int8_roundtrip.py saltvol/weights/saltvol-unet.safetensors /tmp/int8.safetensors
    python benchmarks/compare_models.py saltvol/weights/saltvol-unet.safetensors /tmp/int8.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def int8_roundtrip(weight: "torch.Tensor") -> "torch.Tensor":  # noqa: F821 - torch imported in main
    """Symmetric int8 with one scale per output channel (dim 0), returned dequantized in the input dtype."""
    import torch

    flat = weight.float().reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
    q = torch.round(flat / scale[:, None]).clamp(-127, 127)
    return (q * scale[:, None]).reshape(weight.shape).to(weight.dtype)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="a saltvol .safetensors model")
    p.add_argument("out", type=Path, help="where to write the int8-rounded copy")
    args = p.parse_args(argv)

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    tensors, fp16_bytes, int8_bytes, rounded = {}, 0, 0, 0
    with safe_open(str(args.model), "pt") as f:
        metadata = f.metadata()
        for name in f.keys():
            t = f.get_tensor(name)
            size = t.numel() * t.element_size()
            fp16_bytes += size
            if t.is_floating_point() and t.dim() >= 2:
                tensors[name] = int8_roundtrip(t)
                int8_bytes += t.numel() + 4 * t.shape[0]  # int8 values and a float32 scale per channel
                rounded += 1
            else:
                tensors[name] = t
                int8_bytes += size
    save_file(tensors, str(args.out), metadata=metadata)
    print(f"{rounded} weight tensors rounded to int8 per output channel")
    print(f"{'storage':<10}{'MB':>8}")
    print(f"{'as stored':<10}{fp16_bytes / 1e6:>8.2f}")
    print(f"{'int8':<10}{int8_bytes / 1e6:>8.2f}")
    print(f"wrote {args.out}; score it with benchmarks/compare_models.py {args.model} {args.out}")


if __name__ == "__main__":
    main()
