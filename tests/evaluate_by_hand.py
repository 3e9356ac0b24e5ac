"""Another program's output for `sweep evaluate`'s end-to-end test, with numpy only.

`python evaluate_by_hand.py OUT` writes OUT/data (a three-class data set in MMSegmentation's
layout: 40x32 grayscale scans, labels with an ignored border, a validation case without
class 2) and OUT/pred (one prediction PNG of class ids per validation case, the labels with
noise, and a summary.json beside them, as nnU-Net leaves one), then prints on stdout the
numbers computed here by hand, as JSON: IoUMetric's per-class Dice, IoU and Acc over the
set (ignored pixels left out), their means, aAcc, and the mean per-image Dice of each
foreground class over the images that hold it in the label or the prediction.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np

W, H, CLASSES, IGNORE = 40, 32, 3, 255


def write_png(path, a):
    """An 8-bit grayscale PNG (no Pillow: zlib and struct)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in a)

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def label(rng, with_class2):
    lab = np.zeros((H, W), np.uint8)
    y, x = rng.integers(2, H - 12), rng.integers(2, W - 14)
    lab[y : y + 9, x : x + 12] = 1
    if with_class2:
        cy, cx = rng.integers(8, H - 8), rng.integers(8, W - 8)
        yy, xx = np.mgrid[:H, :W]
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = 2
    lab[0, :] = IGNORE  # the top row is not scored
    return lab


def main(out):
    rng = np.random.default_rng(7)
    cases = {"train": ["t1", "t2", "t3", "t4"], "val": ["v1", "v2", "v3", "v4"]}
    for kind in ("img", "lab"):
        for split in cases:
            os.makedirs(os.path.join(out, "data", kind, split), exist_ok=True)
    os.makedirs(os.path.join(out, "pred"), exist_ok=True)
    with open(os.path.join(out, "data", "dataset.yaml"), "w") as f:
        f.write(
            "name: handmade\nclasses: [background, a, b]\nimg_suffix: .png\nignore_index: 255\n"
            "train: {img_path: img/train, seg_map_path: lab/train}\n"
            "val: {img_path: img/val, seg_map_path: lab/val}\n"
        )
    inter, pred_n, label_n = np.zeros(CLASSES), np.zeros(CLASSES), np.zeros(CLASSES)
    img_dice = {c: [] for c in range(1, CLASSES)}
    for split, ids in cases.items():
        for i, case in enumerate(ids):
            lab = label(rng, with_class2=(case != "v2"))
            img = np.where(lab == 0, 60, 60 + 80 * lab.astype(np.int32)) + rng.integers(0, 20, (H, W))
            write_png(os.path.join(out, "data", "img", split, case + ".png"), np.clip(img, 0, 255))
            write_png(os.path.join(out, "data", "lab", split, case + ".png"), lab)
            if split != "val":
                continue
            pred = np.where(lab == IGNORE, 0, lab).astype(np.uint8)
            noise = rng.random((H, W)) < 0.15
            pred[noise] = rng.integers(0, CLASSES, noise.sum())
            if case == "v3":
                pred[pred == 2] = 1  # class 2 missed entirely in one image
            write_png(os.path.join(out, "pred", case + ".png"), pred)
            valid = lab != IGNORE
            for c in range(CLASSES):
                p, g = (pred == c) & valid, (lab == c) & valid
                inter[c] += (p & g).sum()
                pred_n[c] += p.sum()
                label_n[c] += g.sum()
                if c > 0 and p.sum() + g.sum() > 0:
                    img_dice[c].append(200.0 * (p & g).sum() / (p.sum() + g.sum()))
    with open(os.path.join(out, "pred", "summary.json"), "w") as f:
        f.write("{}")
    dice = 200.0 * inter / (pred_n + label_n)
    iou = 100.0 * inter / (pred_n + label_n - inter)
    acc = 100.0 * inter / label_n
    result = {"mDice": dice.mean(), "mIoU": iou.mean(), "mAcc": acc.mean(), "aAcc": 100.0 * inter.sum() / label_n.sum()}
    for c in range(CLASSES):
        result[f"Dice.{c}"], result[f"IoU.{c}"], result[f"Acc.{c}"] = dice[c], iou[c], acc[c]
    for c, values in img_dice.items():
        result[f"imgDice.{c}"] = float(np.mean(values))
    print(json.dumps({k: float(v) for k, v in result.items()}))


if __name__ == "__main__":
    main(sys.argv[1])
