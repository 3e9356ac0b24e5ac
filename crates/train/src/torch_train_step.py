"""PyTorch eager reference for `sweep bench train`: the same UNet-S5-D16 + decode head as
sweep's model (src/trainer/model), the same batch, CE loss, SGD; prints one JSON line.

Run by src/bench/train.rs (embedded with include_str!). Also `--count-params` prints the
parameter counts of each part, and `--parity FILE...` computes (one JSON line per file) the loss, some gradients and the
updated batch-norm statistics of one training forward/backward from weights and a batch
exported by sweep (tests/trainer_torch_parity.rs).
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvModule(nn.Module):
    def __init__(self, cin, cout, k, dilation=1):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BasicConvBlock(nn.Module):
    def __init__(self, cin, cout, n=2):
        super().__init__()
        self.convs = nn.Sequential(*[ConvModule(cin if i == 0 else cout, cout, 3) for i in range(n)])

    def forward(self, x):
        return self.convs(x)


class UpConvBlock(nn.Module):
    def __init__(self, cin, skip, cout):
        super().__init__()
        self.conv_block = BasicConvBlock(2 * skip, cout)
        self.upsample = ConvModule(cin, skip, 1)

    def forward(self, skip, x):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv_block(torch.cat([skip, self.upsample(x)], 1))


class UNet(nn.Module):
    def __init__(self, base):
        super().__init__()
        ch = [base << i for i in range(5)]
        self.encoder = nn.ModuleList(
            [BasicConvBlock(3 if i == 0 else ch[i - 1], ch[i]) for i in range(5)])
        self.decoder = nn.ModuleList([UpConvBlock(ch[i], ch[i - 1], ch[i - 1]) for i in range(1, 5)])

    def forward(self, x):
        skips = []
        for i, stage in enumerate(self.encoder):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            skips.append(x)
        outs = [x]
        for k in reversed(range(len(self.decoder))):
            x = self.decoder[k](skips[k], x)
            outs.append(x)
        return outs


class DecodeHead(nn.Module):
    def __init__(self, kind, cin, channels, classes, dropout=0.1):
        super().__init__()
        self.kind = kind
        if kind == "fcn":
            self.convs = nn.Sequential(ConvModule(cin, channels, 3))
        elif kind == "deeplabv3":
            self.image_pool = ConvModule(cin, channels, 1)
            self.aspp_modules = nn.ModuleList(
                [ConvModule(cin, channels, 1 if d == 1 else 3, d) for d in (1, 12, 24, 36)])
            self.bottleneck = ConvModule(5 * channels, channels, 3)
        else:
            self.scales = (1, 2, 3, 6)
            self.psp_modules = nn.ModuleList([ConvModule(cin, channels, 1) for _ in self.scales])
            self.bottleneck = ConvModule(cin + 4 * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        size = x.shape[2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        if self.kind == "fcn":
            f = self.convs(x)
        elif self.kind == "deeplabv3":
            outs = [up(self.image_pool(F.adaptive_avg_pool2d(x, 1)))]
            outs += [m(x) for m in self.aspp_modules]
            f = self.bottleneck(torch.cat(outs, 1))
        else:
            outs = [x] + [up(m(F.adaptive_avg_pool2d(x, s))) for m, s in zip(self.psp_modules, self.scales)]
            f = self.bottleneck(torch.cat(outs, 1))
        return self.conv_seg(self.dropout(f))


def head_channels(kind, base):
    return max(base, 1) if kind == "fcn" else max(base // 4, 1)


class Segmentor(nn.Module):
    def __init__(self, head, base, classes, aux):
        super().__init__()
        self.backbone = UNet(base)
        self.decode_head = DecodeHead(head, base, head_channels(head, base), classes)
        self.auxiliary_head = DecodeHead("fcn", 2 * base, head_channels("fcn", base), classes) if aux else None

    def forward(self, x):
        outs = self.backbone(x)
        return self.decode_head(outs[4])


def count(m):
    return sum(p.numel() for p in m.parameters())


def parity(path):
    """Loss (CE decode + 0.4 CE aux, MMSeg mean over all pixels), gradients and running
    variances of sweep's exported model, in PyTorch, dropout off."""
    d = json.load(open(path))
    m = Segmentor(d["head"], d["base"], d["classes"], aux=True)
    sd = {k.replace("bn.gamma", "bn.weight").replace("bn.beta", "bn.bias"):
          torch.tensor(v["data"]).reshape(v["shape"]) for k, v in d["weights"].items()}
    res = m.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    assert not missing and not res.unexpected_keys, (missing, res.unexpected_keys)
    m.train()
    m.decode_head.dropout.p = 0.0
    m.auxiliary_head.dropout.p = 0.0
    n, s = d["n"], d["s"]
    x = torch.tensor(d["img"]).reshape(n, 3, s, s)
    y = torch.tensor(d["lab"]).reshape(n, s, s)
    outs = m.backbone(x)
    ce = lambda l: F.cross_entropy(l, y, ignore_index=255, reduction="none").mean()
    aux = F.interpolate(m.auxiliary_head(outs[3]), size=(s, s), mode="bilinear", align_corners=False)
    loss = ce(m.decode_head(outs[4])) + 0.4 * ce(aux)
    loss.backward()
    params = dict(m.named_parameters())
    buffers = dict(m.named_buffers())
    print(json.dumps({"loss": loss.item(),
                      "grads": {k: params[k].grad.flatten().tolist() for k in d["grads"]},
                      "buffers": {k: buffers[k].flatten().tolist() for k in d["buffers"]}}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images")
    ap.add_argument("--labels")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--head", default="fcn")
    ap.add_argument("--base", type=int, default=64)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (fp32 master weights)")
    ap.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    ap.add_argument("--count-params", action="store_true")
    ap.add_argument("--parity", nargs="+", metavar="FILE")
    a = ap.parse_args()

    if a.parity:
        for path in a.parity:  # one torch import for several checks
            parity(path)
        return

    if a.count_params:
        m = Segmentor(a.head, a.base, a.classes, aux=True)
        print(json.dumps({"backbone": count(m.backbone), "decode_head": count(m.decode_head),
                          "auxiliary_head": count(m.auxiliary_head)}))
        return

    torch.manual_seed(0)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    n, s = a.batch, a.crop
    x = torch.from_numpy(np.fromfile(a.images, dtype="<f4").reshape(n, 3, s, s)).to(dev)
    y = torch.from_numpy(np.fromfile(a.labels, dtype="<i8").reshape(n, s, s)).to(dev)
    model = Segmentor(a.head, a.base, a.classes, aux=False).to(dev).train()
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        # bf16 autocast needs no GradScaler: bf16 has fp32's exponent range.
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    last = loss.item()
    sync()
    secs = time.perf_counter() - t0
    print(json.dumps({"secs": secs, "steps": a.steps, "img_per_s": n * a.steps / secs,
                      "last_loss": last, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
