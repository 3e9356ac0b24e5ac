"""A command job that ends the way `--mode` says (tests/commands.rs): the failures a real
training script has, each of which sweep must record with a clear reason and go on."""
import sys
import sweep_job as sj

mode = sj.params({"mode": "ok"})["mode"]
sj.started(3)
for it in (1, 2, 3):
    if mode == "crash" and it == 3:
        raise RuntimeError("CUDA error: an illegal memory access (at iteration 3)")
    if mode == "malformed" and it == 2:
        print('{"iter": 2, "loss": 0.5', flush=True)
    sj.log(it, 1.0 / it)
if mode == "reject":
    sj.reject("width must be even, got 3")
print("training done")  # ordinary output: kept in the job's stdout.log
if mode != "silent":
    sj.result({"accuracy": 0.9, "val_loss": 0.25})
