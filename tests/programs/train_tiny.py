"""A small PyTorch segmentation script driven by sweep as a command job (tests/commands.rs).

Synthetic 16x16 scans with a bright blob to segment; a two-layer conv net trained full-batch,
so that training from a checkpoint continues exactly as an uninterrupted run. It speaks the
job protocol through sweep_job: its curve, a checkpoint every 5 iterations (resumed after a
kill -9), per-image counts (for the report's bootstrap) and its final metrics.
"""
import argparse, os, time
import torch
import sweep_job as sj

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--width", type=int, default=4)
ap.add_argument("--iters", type=int, default=40)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
torch.set_num_threads(1)
pace = float(os.environ.get("TINY_PACE_S", "0"))  # the test's: time to kill it mid-run

# The data set: fixed (its own seed), the same for every job.
g = torch.Generator().manual_seed(1234)
n, size = 24, 16
images, labels = torch.rand(n, 1, size, size, generator=g) * 0.5, torch.zeros(n, size, size, dtype=torch.long)
for i in range(n):
    r, c, h = torch.randint(2, 10, (3,), generator=g).tolist()
    images[i, 0, r:r + h // 2 + 2, c:c + h // 2 + 2] += 0.6
    labels[i, r:r + h // 2 + 2, c:c + h // 2 + 2] = 1
train, val = slice(0, 16), slice(16, n)

torch.manual_seed(args.seed)
net = torch.nn.Sequential(torch.nn.Conv2d(1, args.width, 3, padding=1), torch.nn.ReLU(),
                          torch.nn.Conv2d(args.width, 2, 1))
opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
ckpt = os.path.join(sj.checkpoint_dir(), "last.pt")
start = 0
if os.path.exists(ckpt):
    state = torch.load(ckpt)
    net.load_state_dict(state["net"]); opt.load_state_dict(state["opt"]); start = state["iter"]


def save(it):
    tmp = ckpt + ".tmp"
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "iter": it}, tmp)
    os.replace(tmp, ckpt)
    sj.checkpoint(ckpt, it)


print(f"resumed from iteration {start}")  # ordinary output (the job's stdout.log)
sj.started(args.iters, resumed_from=start)
for it in range(start + 1, args.iters + 1):
    loss = torch.nn.functional.cross_entropy(net(images[train]), labels[train])
    opt.zero_grad(); loss.backward(); opt.step()
    sj.log(it, loss.item())
    if it % 5 == 0 or it == args.iters:
        save(it)
    if sj.stop_requested():
        save(it); sj.interrupted()
    time.sleep(pace)

with torch.no_grad():
    pred = net(images[val]).argmax(1)
totals = {0: [0, 0, 0], 1: [0, 0, 0]}
for k in range(pred.shape[0]):
    for cls in (0, 1):
        p, l = pred[k] == cls, labels[val][k] == cls
        counts = [int((p & l).sum()), int(p.sum()), int(l.sum())]
        sj.image(f"scan_{k}", *counts, cls=cls)
        totals[cls] = [a + b for a, b in zip(totals[cls], counts)]
dice = [200.0 * i / max(p + l, 1) for i, p, l in totals.values()]
iou = [100.0 * i / max(p + l - i, 1) for i, p, l in totals.values()]
sj.result({"mDice": sum(dice) / 2, "mIoU": sum(iou) / 2, "Dice.1": dice[1]})
