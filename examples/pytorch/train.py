# A plain PyTorch training script as sweep's command job: `sweep run examples/pytorch/sweep.yaml`.
import argparse, os, torch
import sweep_job as sj  # sweep puts it on PYTHONPATH (python/sweep_job.py)

ap = argparse.ArgumentParser()
for name, kind, default in [("lr", float, 0.1), ("width", int, 8), ("iters", int, 100), ("seed", int, 0)]:
    ap.add_argument(f"--{name}", type=kind, default=default)
a = ap.parse_args()
g = torch.Generator().manual_seed(0)  # the data: the same for every job
x = torch.rand(32, 1, 16, 16, generator=g)
y = (torch.nn.functional.avg_pool2d(x, 3, 1, 1) > 0.55).long()[:, 0]  # segment the bright patches
torch.manual_seed(a.seed)
net = torch.nn.Sequential(torch.nn.Conv2d(1, a.width, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(a.width, 2, 3, padding=1))
opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
ckpt, start = os.path.join(sj.checkpoint_dir(), "last.pt"), 0
if os.path.exists(ckpt):  # a resumed or retried job continues where its last attempt saved
    s = torch.load(ckpt); net.load_state_dict(s["net"]); opt.load_state_dict(s["opt"]); start = s["iter"]
sj.started(a.iters, resumed_from=start)
for it in range(start + 1, a.iters + 1):
    loss = torch.nn.functional.cross_entropy(net(x[:24]), y[:24])
    opt.zero_grad(); loss.backward(); opt.step()
    sj.log(it, loss.item())
    if it % 20 == 0 or sj.stop_requested():  # SIGTERM (Ctrl-C, an agent told to stop): save and go
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "iter": it}, ckpt)
        if sj.stop_requested(): sj.interrupted()
with torch.no_grad():
    pred = net(x[24:]).argmax(1)
for k in range(8):  # per-image counts: the report's bootstrap says which rows are ≈ best
    p, l = pred[k] == 1, y[24 + k] == 1
    sj.image(f"img_{k}", (p & l).sum(), p.sum(), l.sum())
sj.result({"Dice": 200.0 * (pred & y[24:]).sum().item() / max((pred.sum() + y[24:].sum()).item(), 1)})
