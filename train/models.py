"""Model factory: U-Net and U-Net++ from segmentation-models-pytorch, and a compact 2-D V-Net.

The V-Net is written here (about 60 lines) rather than taken from MONAI: MONAI would add a large
dependency for one network, and the 2-D form of Milletari et al.'s design (residual stages of
5x5 convolutions, strided-convolution down-sampling, PReLU) is small enough to own.
"""

from __future__ import annotations

import torch
from torch import nn

ARCHS = ("unet", "unetpp", "vnet")
DEFAULT_ENCODER = "mobilenet_v2"
UNETPP_DECODER = (128, 64, 32, 16, 8)


class _ResStage(nn.Module):
    def __init__(self, ch: int, n_conv: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_conv):
            layers += [nn.Conv2d(ch, ch, 5, padding=2, bias=False), nn.BatchNorm2d(ch), nn.PReLU(ch)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VNet2D(nn.Module):
    """2-D V-Net: residual stages, 2x2 strided down-convolutions, transposed up-convolutions."""

    def __init__(
        self, in_channels: int = 1, classes: int = 1, base: int = 16, convs: tuple[int, ...] = (1, 2, 3, 3, 3)
    ) -> None:
        super().__init__()
        chs = [base * 2**i for i in range(len(convs))]
        self.inp = nn.Sequential(
            nn.Conv2d(in_channels, chs[0], 5, padding=2, bias=False), nn.BatchNorm2d(chs[0]), nn.PReLU(chs[0])
        )
        self.enc = nn.ModuleList(_ResStage(c, n) for c, n in zip(chs, convs))
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chs[i], chs[i + 1], 2, stride=2, bias=False), nn.BatchNorm2d(chs[i + 1]), nn.PReLU(chs[i + 1])
            )
            for i in range(len(chs) - 1)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(chs[i + 1], chs[i], 2, stride=2, bias=False),
                nn.BatchNorm2d(chs[i]),
                nn.PReLU(chs[i]),
            )
            for i in range(len(chs) - 1)
        )
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * chs[i], chs[i], 1, bias=False), nn.BatchNorm2d(chs[i]), nn.PReLU(chs[i]))
            for i in range(len(chs) - 1)
        )
        self.dec = nn.ModuleList(_ResStage(chs[i], max(convs[i], 1)) for i in range(len(chs) - 1))
        self.head = nn.Conv2d(chs[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        skips = []
        for i, stage in enumerate(self.enc):
            x = stage(x)
            if i < len(self.down):
                skips.append(x)
                x = self.down[i](x)
        for i in reversed(range(len(self.up))):
            x = self.up[i](x)
            x = self.dec[i](self.fuse[i](torch.cat([x, skips[i]], 1)))
        return self.head(x)


def build_model(arch: str, encoder: str = DEFAULT_ENCODER, classes: int = 1) -> nn.Module:
    """One factory for every architecture; weights always from scratch (nothing is downloaded)."""
    if arch == "vnet":
        return VNet2D(1, classes)
    import segmentation_models_pytorch as smp

    if arch == "unet":
        return smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=1, classes=classes)
    if arch == "unetpp":
        # A lighter decoder than smp's default (256..16): the nested blocks dominate CPU time.
        return smp.UnetPlusPlus(
            encoder_name=encoder, encoder_weights=None, in_channels=1, classes=classes, decoder_channels=UNETPP_DECODER
        )
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
