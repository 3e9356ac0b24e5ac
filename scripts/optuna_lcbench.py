#!/usr/bin/env python3
"""Optuna's reference for `sweep bench search`: RandomSampler + SuccessiveHalvingPruner on
the LCBench surrogate, on the same harness as sweep's simulator.

Same oracle (lcbench_oracle.Surrogate: the same ONNX calls), same space, same budget (job
time, all workers together), same simulated asynchronous workers: each of `--workers`
workers asks a trial, runs it epoch rung by epoch rung (2, 6, 18, 52), each segment taking
the surrogate's time difference in simulated seconds, and reports + asks should_prune at
each rung; a pruned or finished trial frees its worker, which asks the next. A segment that
would end after the budget is spent does not count.

Prints one JSON line per (task, seed): best val_accuracy at epoch 52, regret against the
reference, trials, rung evaluations, and the best-so-far steps [[job time, best], ...].
"""

import argparse
import heapq
import json
import os
import sys
import time as clock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lcbench_oracle import MAX_EPOCH, Surrogate  # noqa: E402

import optuna  # noqa: E402


def suggest(trial):
    """The same 7-D space as sweep's side (log ints: int with log=True)."""
    return [
        trial.suggest_int("batch_size", 16, 512, log=True),
        trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        trial.suggest_float("momentum", 0.1, 0.99),
        trial.suggest_float("weight_decay", 1e-5, 0.1),
        trial.suggest_int("num_layers", 1, 5),
        trial.suggest_int("max_units", 64, 1024, log=True),
        trial.suggest_float("max_dropout", 0.0, 1.0),
    ]


def run(surrogate, task, seed, budget, workers, epochs, min_resource, eta):
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=eta),
    )
    # (end time, order, trial, rung index, curve (acc, time), segment cost)
    started, surrogate_s = clock.perf_counter(), 0.0
    heap, order = [], 0
    now = spent = 0.0
    trials = rung_evals = full_evals = 0
    best, steps = None, []

    def start(rung, trial, curve):
        nonlocal order
        acc, time = curve
        before = time[rung - 1] if rung > 0 else 0.0
        cost = max(time[rung] - before, 0.0)
        order += 1
        heapq.heappush(heap, (now + cost, order, trial, rung, curve, cost))

    def new_trial():
        nonlocal trials, surrogate_s
        trial = study.ask()
        params = suggest(trial)
        t0 = clock.perf_counter()
        acc, time = surrogate.predict(task, [params], epochs)
        surrogate_s += clock.perf_counter() - t0
        trials += 1
        start(0, trial, (acc[0].tolist(), time[0].tolist()))

    for _ in range(workers):
        new_trial()
    end = "idle"
    while heap:
        t_end = heap[0][0]
        spent_at_end = spent + len(heap) * (t_end - now)
        if spent_at_end > budget:
            now += (budget - spent) / len(heap)
            spent = budget
            end = "budget"
            break
        now, spent = t_end, spent_at_end
        _, _, trial, rung, curve, _ = heapq.heappop(heap)
        acc, _time = curve
        value = acc[rung]
        rung_evals += 1
        if rung == len(epochs) - 1:
            study.tell(trial, value)
            full_evals += 1
            if best is None or value > best:
                best = value
                steps.append([spent, best])
            new_trial()
            continue
        trial.report(value, epochs[rung])
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            new_trial()
        else:
            start(rung + 1, trial, curve)
    return {
        "best": best,
        "trials": trials,
        "rung_evals": rung_evals,
        "full_evals": full_evals,
        "cost_s": spent,
        "end_s": now,
        "end": end,
        "steps": steps,
        "wall_s": clock.perf_counter() - started,
        "surrogate_s": surrogate_s,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--surrogate", required=True)
    ap.add_argument("--reference", required=True, help='JSON {task: {"best": .., "mean_cost": ..}}')
    ap.add_argument("--tasks", required=True, help="comma-separated task ids")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--budget-factor", type=float, default=100.0, help="budget = factor x mean 52-epoch cost")
    ap.add_argument("--epochs", default="2,6,18,52", help="where trials report (the last is the end)")
    ap.add_argument("--min-resource", type=int, default=2)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    surrogate = Surrogate(args.surrogate, args.threads)
    with open(args.reference) as f:
        refs = json.load(f)
    epochs = [int(e) for e in args.epochs.split(",")]
    assert epochs[-1] == MAX_EPOCH, "the last epoch is the end of a trial"
    for task in args.tasks.split(","):
        ref = refs[task]
        budget = args.budget_factor * ref["mean_cost"]
        for seed in range(args.seeds):
            r = run(surrogate, task, seed, budget, args.workers, epochs, args.min_resource, args.eta)
            r.update(task=task, seed=seed, budget_s=budget)
            r["regret"] = None if r["best"] is None else ref["best"] - r["best"]
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
