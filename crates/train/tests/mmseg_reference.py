"""PyTorch reference for tests/transfer_parity.rs: MMSegmentation's UNet-S5-D16 with its
FCN / ASPP (DeepLabV3) / PSP decode heads and auxiliary FCN head, written from
mmseg 1.x's module structure so that `state_dict()` produces MMSeg's own key names
(nothing here spells a key by hand).

    python mmseg_reference.py OUT_DIR [BASE_CHANNELS]

For each head writes to OUT_DIR:
  {head}.pth          MMSeg checkpoint layout: {'meta': {...}, 'state_dict': OrderedDict}
  {head}_input.f32    the input, float32 little-endian, shape [2, 3, 32, 48]
  {head}_logits.f32   decode-head logits in eval mode, [2, classes, 32, 48]
  {head}_aux.f32      auxiliary-head logits in eval mode, [2, classes, 16, 24]
and manifest.json with the shapes. Weights are random (seeded), including batch-norm
weight, bias and running statistics, so a swapped or mis-mapped tensor shows.
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def resize(x, size):
    # mmseg.models.utils.resize with mode bilinear, align_corners False.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ConvModule(nn.Module):
    """mmcv.cnn.ConvModule with norm_cfg BN and act_cfg ReLU: conv (no bias, since a norm
    follows) -> bn -> ReLU; the norm layer is registered as `bn`."""

    def __init__(self, in_ch, out_ch, kernel_size, padding=0, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, padding=padding, dilation=dilation, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class BasicConvBlock(nn.Module):
    def __init__(self, in_ch, out_ch, num_convs=2):
        super().__init__()
        self.convs = nn.Sequential(
            *[
                ConvModule(in_ch if i == 0 else out_ch, out_ch, 3, padding=1)
                for i in range(num_convs)
            ]
        )

    def forward(self, x):
        return self.convs(x)


class InterpConv(nn.Module):
    """Upsample (bilinear x2, align_corners False) then ConvModule 1x1 (conv_first False)."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        conv = ConvModule(in_ch, out_ch, 1, padding=0)
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.interp_upsample = nn.Sequential(upsample, conv)

    def forward(self, x):
        return self.interp_upsample(x)


class UpConvBlock(nn.Module):
    def __init__(self, in_ch, skip_ch, out_ch):
        super().__init__()
        self.conv_block = BasicConvBlock(2 * skip_ch, out_ch, 2)
        self.upsample = InterpConv(in_ch, skip_ch)

    def forward(self, skip, x):
        x = self.upsample(x)
        return self.conv_block(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels=3, base_channels=64, num_stages=5):
        super().__init__()
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(num_stages):
            block = []
            if i != 0:
                block.append(nn.MaxPool2d(kernel_size=2))
                self.decoder.append(
                    UpConvBlock(
                        base_channels * 2**i,
                        base_channels * 2 ** (i - 1),
                        base_channels * 2 ** (i - 1),
                    )
                )
            block.append(BasicConvBlock(in_channels, base_channels * 2**i, 2))
            self.encoder.append(nn.Sequential(*block))
            in_channels = base_channels * 2**i

    def forward(self, x):
        enc_outs = []
        for enc in self.encoder:
            x = enc(x)
            enc_outs.append(x)
        dec_outs = [x]
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](enc_outs[i], x)
            dec_outs.append(x)
        return dec_outs


class BaseDecodeHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes, in_index, dropout_ratio=0.1):
        super().__init__()
        self.in_channels = in_channels
        self.channels = channels
        self.in_index = in_index
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout_ratio)

    def cls_seg(self, feat):
        return self.conv_seg(self.dropout(feat))


class FCNHead(BaseDecodeHead):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.convs = nn.Sequential(ConvModule(self.in_channels, self.channels, 3, padding=1))

    def forward(self, inputs):
        return self.cls_seg(self.convs(inputs[self.in_index]))


class ASPPModule(nn.ModuleList):
    def __init__(self, dilations, in_channels, channels):
        super().__init__()
        for d in dilations:
            self.append(
                ConvModule(
                    in_channels,
                    channels,
                    1 if d == 1 else 3,
                    padding=0 if d == 1 else d,
                    dilation=d,
                )
            )

    def forward(self, x):
        return [m(x) for m in self]


class ASPPHead(BaseDecodeHead):
    def __init__(self, *args, dilations=(1, 12, 24, 36), **kwargs):
        super().__init__(*args, **kwargs)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvModule(self.in_channels, self.channels, 1)
        )
        self.aspp_modules = ASPPModule(dilations, self.in_channels, self.channels)
        self.bottleneck = ConvModule(
            (len(dilations) + 1) * self.channels, self.channels, 3, padding=1
        )

    def forward(self, inputs):
        x = inputs[self.in_index]
        outs = [resize(self.image_pool(x), x.shape[2:])]
        outs.extend(self.aspp_modules(x))
        return self.cls_seg(self.bottleneck(torch.cat(outs, dim=1)))


class PPM(nn.ModuleList):
    def __init__(self, pool_scales, in_channels, channels):
        super().__init__()
        for s in pool_scales:
            self.append(
                nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_channels, channels, 1))
            )

    def forward(self, x):
        return [resize(m(x), x.shape[2:]) for m in self]


class PSPHead(BaseDecodeHead):
    def __init__(self, *args, pool_scales=(1, 2, 3, 6), **kwargs):
        super().__init__(*args, **kwargs)
        self.psp_modules = PPM(pool_scales, self.in_channels, self.channels)
        self.bottleneck = ConvModule(
            self.in_channels + len(pool_scales) * self.channels, self.channels, 3, padding=1
        )

    def forward(self, inputs):
        x = inputs[self.in_index]
        outs = [x]
        outs.extend(self.psp_modules(x))
        return self.cls_seg(self.bottleneck(torch.cat(outs, dim=1)))


class EncoderDecoder(nn.Module):
    def __init__(self, head, base, num_classes):
        super().__init__()
        self.backbone = UNet(3, base)
        # Channels as sweep scales them (src/trainer/model/heads.rs `head_channels`):
        # FCN base (64 at base 64), ASPP / PSP base / 4 (16 at base 64).
        cls = {"fcn": FCNHead, "deeplabv3": ASPPHead, "pspnet": PSPHead}[head]
        channels = base if head == "fcn" else max(base // 4, 1)
        self.decode_head = cls(base, channels, num_classes, in_index=4)
        self.auxiliary_head = FCNHead(2 * base, base, num_classes, in_index=3)

    def forward(self, x):
        outs = self.backbone(x)
        return self.decode_head(outs), self.auxiliary_head(outs)


def randomise(model, gen):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(1000)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
            elif name.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.8 + 0.6)
            elif name.endswith("bn.bias"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() == 4:
                fan_in = t.shape[1] * t.shape[2] * t.shape[3]
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)


def main():
    out = sys.argv[1]
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    num_classes = 2
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    manifest = {"base_channels": base, "num_classes": num_classes, "heads": {}}
    for k, head in enumerate(["fcn", "deeplabv3", "pspnet"]):
        gen = torch.Generator().manual_seed(1000 + k)
        model = EncoderDecoder(head, base, num_classes)
        randomise(model, gen)
        model.eval()
        x = torch.randn((2, 3, 32, 48), generator=gen)
        with torch.no_grad():
            logits, aux = model(x)
        ckpt = {
            "meta": {"mmseg_version": "1.2.2", "config": f"{head}_unet_s5-d16 (test)"},
            "state_dict": model.state_dict(),
        }
        torch.save(ckpt, os.path.join(out, f"{head}.pth"))
        for suffix, t in [("input", x), ("logits", logits), ("aux", aux)]:
            t.contiguous().numpy().astype("<f4").tofile(os.path.join(out, f"{head}_{suffix}.f32"))
        manifest["heads"][head] = {
            "input": list(x.shape),
            "logits": list(logits.shape),
            "aux": list(aux.shape),
            "keys": len(model.state_dict()),
        }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
