"""Median and spread of load-driver runs: reads lines `LABEL {json}` (one per run, as the
run-*.sh scripts write them) and prints, per label, the median req/s with its min and max, the
median p99 and the errors; with two labels, the ratio of the second median to the first."""
import json
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    label, js = line.split(" ", 1)
    runs.setdefault(label, []).append(json.loads(js))
for label, rs in runs.items():
    rps = sorted(r["rps"] for r in rs)
    p99 = sorted(r["p99_ms"] for r in rs)
    errors = sum(r.get("errors", 0) for r in rs)
    print(f"{label}: median {statistics.median(rps):,.0f} req/s (min {rps[0]:,.0f}, max {rps[-1]:,.0f}, "
          f"n={len(rps)}), median p99 {statistics.median(p99)} ms, errors {errors}")
medians = [statistics.median(r["rps"] for r in rs) for rs in runs.values()]
if len(medians) == 2:
    first, second = list(runs)
    print(f"{second}/{first}: {medians[1] / medians[0]:.3f}")
