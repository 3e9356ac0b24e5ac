"""A command job for the search test: a score that peaks at x = 0.3, y = 2; its parameters
read from the JSON file sweep writes ($SWEEP_PARAMS_FILE), no arguments."""
import sweep_job as sj

p = sj.params()
sj.result({"score": -(p["x"] - 0.3) ** 2 - 0.1 * (p["y"] - 2) ** 2})
