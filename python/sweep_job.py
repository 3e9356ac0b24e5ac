"""sweep_job: a command job's side of sweep's job protocol, in plain Python (no dependencies).

    import sweep_job as sj
    p = sj.params({"lr": 0.01, "epochs": 10})   # the job's parameters over these defaults
    sj.started(p["epochs"], resumed_from=start)
    sj.log(epoch, loss)                         # a point of the training curve
    if sj.stop_requested(): save(); sj.interrupted()   # SIGTERM: checkpoint, exit 75
    sj.result({"mDice": 71.2})                  # the final metrics (validation)

Each call prints one JSON line on stdout (docs/job-protocol.md); outside sweep the script
runs as it would by hand. `sweep` puts this file on PYTHONPATH; `sweep helper python`
prints it, to ship beside a script.
"""
import json, os, signal, sys

EXIT_REJECTED, EXIT_INTERRUPTED = 65, 75
_stop = []
signal.signal(signal.SIGTERM, lambda *_: _stop.append(True))


def _job():
    path = os.environ.get("SWEEP_PARAMS_FILE")
    return json.load(open(path)) if path else {}


def params(defaults=None):
    """The job's parameters over `defaults` (`--key=value` arguments are the same values)."""
    return {**(defaults or {}), **_job().get("params", {})}


def seed(): return _job().get("seed", 0)
def fold(): return _job().get("fold")          # 0-based, None without cv:
def folds(): return _job().get("folds")
def checkpoint_dir(): return os.environ.get("SWEEP_CHECKPOINT_DIR", "checkpoints")
def pause_at():  # a stopping rule's rung: stop there, checkpoint, sj.result(...), exit 0
    return int(os.environ["SWEEP_PAUSE_AT"]) if os.environ.get("SWEEP_PAUSE_AT") else None
def artifact_dir(): return os.environ.get("SWEEP_ARTIFACT_DIR", ".")


def _emit(obj): print(json.dumps(obj), flush=True)
def started(iters, resumed_from=0): _emit({"started": {"iters": iters, "resumed_from": resumed_from}})
def log(iter, loss, **extra): _emit({"iter": iter, "loss": loss, **extra})
def evaluate(iter, metrics): _emit({"eval": metrics, "iter": iter})
def checkpoint(path, iter): _emit({"checkpoint": str(path), "iter": iter})
def result(metrics): _emit({"metrics": metrics})


def image(name, intersect, pred, label, cls=1, **extra):
    """One image's counts for class `cls`: what the report's bootstrap resamples."""
    _emit({"image": name, "class": cls, "intersect": int(intersect), "pred": int(pred),
           "label": int(label), **extra})


def stop_requested(): return bool(_stop)


def interrupted():
    """After a stop request and a checkpoint: the job resumes later from it."""
    sys.exit(EXIT_INTERRUPTED)


def reject(reason):
    """A bad configuration: the job fails with `reason` and is not retried."""
    print(f"error: {reason}", file=sys.stderr, flush=True)
    sys.exit(EXIT_REJECTED)
