"""A command job under a stopping rule (tests/commands.rs): a learning curve in `iters` whose
final value peaks at x = 0.3. It keeps its iteration in a checkpoint, stops at the rung sweep
asks for (SWEEP_PAUSE_AT), and a promoted job continues from that checkpoint."""
import json, os
import sweep_job as sj

p = sj.params({"x": 0.5, "iters": 9})
ckpt = os.path.join(sj.checkpoint_dir(), "state.json")
start = json.load(open(ckpt))["iter"] if os.path.exists(ckpt) else 0
print(f"resumed from iteration {start}")
end = sj.pause_at() or p["iters"]
sj.started(p["iters"], resumed_from=start)
for it in range(start + 1, end + 1):
    sj.log(it, 1.0 / it)
with open(ckpt + ".tmp", "w") as f:
    json.dump({"iter": end}, f)
os.replace(ckpt + ".tmp", ckpt)
sj.result({"score": (1.0 - (p["x"] - 0.3) ** 2) * end / (end + 2.0)})
