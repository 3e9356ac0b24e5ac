#!/usr/bin/env python3
"""The LCBench surrogate (YAHPO Gym's ONNX model) as an oracle for `sweep bench search`.

Speaks JSON lines on stdin/stdout, one answer per request:
  {"op": "curve", "task": "3945", "params": [batch_size, learning_rate, momentum,
   weight_decay, num_layers, max_units, max_dropout], "epochs": [2, 6, 18, 52]}
      -> {"val_accuracy": [...], "time": [...]}   (one batch: every epoch asked at once)
  {"op": "reference", "task": "3945", "n": 5000, "cost_n": 200, "seed": 0}
      -> {"best": max val_accuracy at epoch 52 over n random configurations,
          "mean_cost": mean time (s) of 52 epochs over the first cost_n of them}
Errors answer {"error": "..."}. The first line written is {"ready": true, "tasks": [...]}.

Also imported by optuna_lcbench.py (the same surrogate calls for Optuna's side).
"""

import argparse
import json
import math
import os
import sys

import numpy as np

# The search space, in the order the Rust side sends values (x_cont columns 1..7).
PARAMS = [
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "num_layers",
    "max_units",
    "max_dropout",
]
MAX_EPOCH = 52


class Surrogate:
    def __init__(self, directory, threads=1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.path.join(directory, "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        with open(os.path.join(directory, "encoding.json")) as f:
            self.encoding = json.load(f)["OpenML_task_id"]
        with open(os.path.join(directory, "config_space.json")) as f:
            space = json.load(f)
        self.tasks = next(h for h in space["hyperparameters"] if h["name"] == "OpenML_task_id")[
            "choices"
        ]

    def task_index(self, task):
        task = str(task)
        if task not in self.encoding or task not in self.tasks:
            raise ValueError(f"unknown LCBench task {task!r} (one of {', '.join(self.tasks)})")
        return self.encoding[task]

    def predict(self, task, configs, epochs):
        """val_accuracy and time, each [len(configs), len(epochs)], in one batch."""
        configs = np.asarray(configs, dtype=np.float64).reshape(-1, len(PARAMS))
        epochs = np.asarray(epochs, dtype=np.float64)
        n, m = len(configs), len(epochs)
        x = np.empty((n * m, 8), dtype=np.float32)
        x[:, 0] = np.tile(epochs, n)
        x[:, 1:] = np.repeat(configs, m, axis=0)
        cat = np.full((n * m, 1), self.task_index(task), dtype=np.int32)
        out = self.session.run(None, {"x_cat": cat, "x_cont": x})[0]
        return out[:, 1].reshape(n, m).astype(np.float64), out[:, 0].reshape(n, m).astype(np.float64)


def random_configs(rng, n):
    """n configurations from the benchmark's own space (log ints rounded)."""

    def log_uniform(low, high):
        return np.exp(rng.uniform(math.log(low), math.log(high), n))

    cols = [
        np.round(log_uniform(16, 512)),
        log_uniform(1e-4, 1e-1),
        rng.uniform(0.1, 0.99, n),
        rng.uniform(1e-5, 0.1, n),
        rng.integers(1, 6, n).astype(np.float64),
        np.round(log_uniform(64, 1024)),
        rng.uniform(0.0, 1.0, n),
    ]
    return np.stack(cols, axis=1)


def reference(surrogate, task, n, cost_n, seed, chunk=1000):
    rng = np.random.default_rng([seed, int(task)])
    configs = random_configs(rng, n)
    best, times = -math.inf, []
    for i in range(0, n, chunk):
        acc, time = surrogate.predict(task, configs[i : i + chunk], [MAX_EPOCH])
        best = max(best, float(acc.max()))
        times.extend(time[:, 0].tolist())
    return {"best": best, "mean_cost": float(np.mean(times[:cost_n])), "n": n, "cost_n": cost_n}


def answer(surrogate, req):
    op = req.get("op")
    if op == "curve":
        params = req["params"]
        if len(params) != len(PARAMS):
            raise ValueError(f"expected {len(PARAMS)} values ({', '.join(PARAMS)}), got {len(params)}")
        acc, time = surrogate.predict(req["task"], [params], req["epochs"])
        return {"val_accuracy": acc[0].tolist(), "time": time[0].tolist()}
    if op == "reference":
        return reference(
            surrogate, req["task"], int(req.get("n", 5000)), int(req.get("cost_n", 200)), int(req.get("seed", 0))
        )
    raise ValueError(f"unknown op {op!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--surrogate", required=True, help="folder with model.onnx, encoding.json, config_space.json")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    surrogate = Surrogate(args.surrogate, args.threads)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "tasks": surrogate.tasks}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = answer(surrogate, json.loads(line))
        except Exception as e:  # answered, so that the Rust side reports it
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
