#!/usr/bin/env python3
"""Optuna's side of `sweep bench proposal`: the cost of one TPE proposal, `study.ask()`.

The same 8-dimensional mixed space and the same objective as sweep's side, TPESampler with
Optuna's defaults (seeded). `--trials` trials are created and finished by ask/tell with the
objective, then the next `--measure` asks are timed one by one (wall clock around
`study.ask(distributions)`, which samples every parameter; each is told its value before
the next ask, untimed).

Storages: in-memory (always), and with `--sqlite PATH` Optuna's RDB storage on a fresh
SQLite file too: it gets the in-memory study's finished trials (`add_trials`, the same
history) and then its own `--measure` timed asks. Prints one JSON object on stdout.
"""

import argparse
import json
import math
import os
import sys
import time

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

# The same space as sweep's side (src/commands/bench_proposal.rs, SPACE_YAML).
DISTRIBUTIONS = {
    "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True),
    "optimizer.weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
    "optimizer.momentum": FloatDistribution(0.5, 0.99),
    "loss.0.class_weight.1": FloatDistribution(1.0, 100.0),
    "batch": IntDistribution(1, 16),
    "crop": IntDistribution(128, 512, step=64),
    "model.head": CategoricalDistribution(["fcn", "deeplabv3", "pspnet"]),
    "schedule.type": CategoricalDistribution(["poly", "constant"]),
}


def objective(p):
    """The same deterministic landscape as sweep's side (`objective` there)."""
    a = (math.log10(p["optimizer.lr"]) + 2.5) / 1.5
    b = (math.log10(p["optimizer.weight_decay"]) + 4.0) / 2.0
    c = (p["optimizer.momentum"] - 0.9) / 0.49
    d = (p["loss.0.class_weight.1"] - 30.0) / 99.0
    e = (p["batch"] - 8.0) / 15.0
    g = (p["crop"] - 320.0) / 384.0
    head = {"deeplabv3": 0.04, "pspnet": 0.02}.get(p["model.head"], 0.0)
    sched = 0.02 if p["schedule.type"] == "poly" else 0.0
    return 0.85 - 0.08 * (a * a + b * b) - 0.04 * (c * c + d * d + e * e + g * g) + 0.03 * a * b + head + sched


def timed_asks(study, measure):
    """Milliseconds of each of `measure` asks (each told its value, untimed)."""
    out = []
    for _ in range(measure):
        t0 = time.perf_counter()
        trial = study.ask(DISTRIBUTIONS)
        out.append((time.perf_counter() - t0) * 1e3)
        study.tell(trial, objective(trial.params))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--measure", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sqlite", help="also time Optuna's RDB storage on this (new) SQLite file")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    out = {"optuna": optuna.__version__, "python": sys.version.split()[0]}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    t0 = time.perf_counter()
    for _ in range(args.trials):
        trial = study.ask(DISTRIBUTIONS)
        study.tell(trial, objective(trial.params))
    out["memory_history_s"] = time.perf_counter() - t0
    history = study.get_trials(deepcopy=False)[: args.trials]
    out["memory_ask_ms"] = timed_asks(study, args.measure)
    out["memory_best"] = study.best_value

    if args.sqlite:
        if os.path.exists(args.sqlite):
            os.remove(args.sqlite)
        rdb = optuna.create_study(
            direction="maximize",
            storage=f"sqlite:///{args.sqlite}",
            sampler=optuna.samplers.TPESampler(seed=args.seed),
        )
        t0 = time.perf_counter()
        rdb.add_trials(history)
        out["sqlite_history_s"] = time.perf_counter() - t0
        out["sqlite_ask_ms"] = timed_asks(rdb, args.measure)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
