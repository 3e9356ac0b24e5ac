"""Optuna's side of `sweep bench orchestrator`: the cost of a trial that does nothing, with
SQLite storage and `workers` threads (study.optimize(n_jobs=...)), as sweep's command jobs
that exit at once. Prints one JSON line: {"version", "trials", "workers", "wall_s"}."""
import json, sys, time
import optuna

n, workers, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(storage=f"sqlite:///{db}", sampler=optuna.samplers.RandomSampler(seed=0))
t0 = time.perf_counter()
study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=n, n_jobs=workers)
wall = time.perf_counter() - t0
print(json.dumps({"version": optuna.__version__, "trials": len(study.trials), "workers": workers, "wall_s": wall}))
