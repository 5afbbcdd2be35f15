"""An smp U-Net with a skip connection at the input's full resolution.

smp's U-Net decoder drops the encoder's first feature map (the input itself)
and every smp encoder halves the resolution in its stem, so the last decoder
stage upsamples to full resolution with no skip: nothing finer than stride 2
reaches the mask.  On 101-pixel TGS tiles, where a small salt body is a few
hundred pixels and the metric's upper IoU thresholds (0.85-0.95) turn on a few
boundary pixels, that is where detail is lost; the TGS Kaggle entries got the
same detail by removing the encoder's first pooling or by upsampling their
input 2x (about 4x the compute).  :class:`FullResolutionUnet` keeps smp's
encoder, decoder and heads as they are and adds two convolutions on the input
at full resolution whose features join the decoder's output before the
segmentation head (at width 16 and 128 px, 15 % more time per bf16 training
step for efficientnet-b0 and 38 % for resnet18: full-resolution maps are
memory-bound).  The join is residual and its last batch norm starts at zero,
so a new branch leaves the network's output unchanged: a trained U-Net can
grow one and go on training from where it was.  smp has no such option, so
saltvol writes this much itself (docs/architecture.md).  Measured on TGS in
docs/model.md ("Session 18"): better drawn salt bodies, more empty tiles
called salty, the same score.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

__all__ = ["FullResolutionUnet"]


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class FullResolutionUnet(smp.Unet):
    """smp's ``Unet`` plus a ``width``-channel branch on the input, added to the decoder output at full resolution.

    Takes smp's ``Unet`` arguments; its state dict holds smp's keys unchanged
    plus ``full_resolution.*`` and ``fuse.*``.  Returns what ``smp.Unet``
    returns: mask logits, and with ``aux_params`` also the label logits.
    """

    def __init__(self, *, width: int, decoder_channels: tuple[int, ...], in_channels: int = 1, **unet_args) -> None:
        super().__init__(decoder_channels=decoder_channels, in_channels=in_channels, **unet_args)
        if width < 1:
            raise ValueError(f"the full-resolution branch needs at least one channel, got {width}")
        last = decoder_channels[-1]
        self.full_resolution = nn.Sequential(*_conv_bn_relu(in_channels, width), *_conv_bn_relu(width, width))
        self.fuse = nn.Sequential(nn.Conv2d(last + width, last, 3, padding=1, bias=False), nn.BatchNorm2d(last))
        nn.init.zeros_(self.fuse[1].weight)  # the branch starts silent: output = smp's U-Net's

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        self.check_input_shape(x)
        features = self.encoder(x)
        decoded = self.decoder(features)
        fused = decoded + self.fuse(torch.cat([decoded, self.full_resolution(x)], dim=1))
        masks = self.segmentation_head(fused)
        if self.classification_head is not None:
            return masks, self.classification_head(features[-1])
        return masks
