"""Several U-Nets used as one network: the mean of their salt probabilities.

Two networks trained from scratch fail on different tiles (docs/model.md: an
efficientnet-b0 misses textureless salt that a resnet18 finds, and the
resnet18 calls textureless sediment salt where the efficientnet-b0 does not),
so their mean is better than either.  :class:`EnsembleNetwork` returns the
logit of that mean, so everything that runs a single U-Net (test-time flips,
calibration, thresholds, ``segment``) runs an ensemble unchanged.
"""

from __future__ import annotations

import torch

__all__ = ["EnsembleNetwork"]

#: Probabilities are clipped to [eps, 1 - eps] before the logit, so a member that is certain cannot make it infinite.
_EPS = 1e-6


class EnsembleNetwork(torch.nn.Module):
    """Logits of the mean sigmoid of ``members`` (each an smp U-Net, auxiliary head ignored).

    Its state dict names each member's weights ``members.<i>.<name>``, so an
    ensemble is saved and loaded like any network.
    """

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two networks, got {len(members)}")
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for member in self.members:
            logits = member(x)
            if isinstance(logits, (tuple, list)):  # smp's aux_params head: (mask logits, label logits)
                logits = logits[0]
            prob = torch.sigmoid(logits.float())
            total = prob if total is None else total + prob
        return torch.logit(total / len(self.members), eps=_EPS)
