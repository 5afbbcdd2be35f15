"""Training speed: one optimizer step of a batch of tiles, by input size and precision.

What an epoch of ``saltvol train`` will cost on this machine before starting one: the
forward pass, the backward pass and an AdamW step of the bundled model's architecture
(or ``--model``'s, or each of ``--encoders`` with the default decoder), channels_last, at each ``--sizes`` (128 is the 1x input, 256 the
``--input-scale 2`` one), in fp32 and under bf16 autocast wherever oneDNN runs bf16 (a "-" where it
cannot).  Training uses bf16 only where it is native (AVX512-BF16 or AMX); on plain AVX-512 the bf16
column shows what converting costs.  Median of ``--reps``
steps after one warm-up step.

    python benchmarks/bench_train_step.py [--sizes 128 192 256] [--batch-size 32] [--reps 4] [--model PATH]
    python benchmarks/bench_train_step.py --sizes 128 --encoders efficientnet-b0 timm-regnety_016 resnet18
    python benchmarks/bench_train_step.py --sizes 128 --encoders efficientnet-b0 --architectures unet unetplusplus

Not a test: it prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def _step_seconds(network, optimizer, size: int, batch_size: int, dtype, reps: int) -> float:
    import torch

    x = torch.randn(batch_size, 1, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(reps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = network(x)
            logits = out[0] if isinstance(out, tuple) else out
        logits.float().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--model", default=None, help="model file whose architecture to time (default: the bundled model)")
    parser.add_argument("--encoders", nargs="+", default=None, help="smp encoders to time instead, each with the default decoder")
    parser.add_argument("--full-resolution-widths", type=int, nargs="+", default=[0],
                        help="with --encoders: time each encoder with these full-resolution branch widths (0: none)")
    parser.add_argument("--architectures", nargs="+", default=["unet"], choices=["unet", "unetplusplus", "manet"],
                        help="with --encoders: time each encoder under these decoders (a branch only with unet)")
    args = parser.parse_args()

    import torch

    import saltvol
    from saltvol.model import ModelConfig, autocast_dtype, build_model, onednn_runs_bf16

    if args.encoders:
        configs = [ModelConfig(arch=arch, encoder=name, full_resolution_width=width)
                   for name in args.encoders for arch in args.architectures for width in args.full_resolution_widths
                   if not (width and arch != "unet")]
    else:
        configs = list(saltvol.load_model(args.model).meta.networks)  # an ensemble: each of its networks
    native = autocast_dtype("cpu") is not None
    bf16 = torch.bfloat16 if onednn_runs_bf16() else None
    print(f"batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; native bf16: {'yes' if native else 'no'} "
          f"(training uses {'bf16 autocast' if native else 'fp32'})")
    print("\n| architecture | encoder | full-resolution width | input px | fp32 s / step | bf16 autocast s / step | steps per 1x epoch (3,150 tiles) at training's precision |")
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        network = build_model(config).train().to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
        for size in args.sizes:
            fp32 = _step_seconds(network, optimizer, size, args.batch_size, None, args.reps)
            half = _step_seconds(network, optimizer, size, args.batch_size, bf16, args.reps) if bf16 else None
            used = half if native and half else fp32  # the precision training takes here
            steps = 3150 // args.batch_size
            print(f"| {config.arch} | {config.encoder} | {config.full_resolution_width} | {size} | {fp32:.2f} | {f'{half:.2f}' if half else '-'} | "
                  f"{steps} steps, about {steps * used:.0f} s |")


if __name__ == "__main__":
    main()
