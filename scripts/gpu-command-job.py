"""The GPU run's command-job step (scripts/gpu-run): a program run by sweep under
`--gpus 0 --per-gpu 2` sees its slot's CUDA_VISIBLE_DEVICES and computes on that GPU (on the
CPU when rehearsed). Its stdout.log says what it saw."""
import os
import torch
import sweep_job as sj

cuda = torch.cuda.is_available()
x = torch.ones(512, 512, device="cuda" if cuda else "cpu")
print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')} cuda={cuda}")
sj.result({"cuda": float(cuda), "gpus_seen": float(torch.cuda.device_count()),
           "matmul_ok": float((x @ x).sum().item() == 512.0 ** 3)})
