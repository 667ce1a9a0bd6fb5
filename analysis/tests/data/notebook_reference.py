"""Independent reference for tests/notebook_table.rs.

Writes the fixture logs (two replica files, events shuffled across them, plus
broken lines, an event without the experiment and sessions left open) and
computes the A/B table the way the analysts' pandas/scipy notebook does, then
checks the Welch interval against scipy's own `ttest_ind(equal_var=False)`.
The notebook's code is analysis/bench/notebook.py's. Run once (needs
pandas, scipy, mmh3); the Rust test hard-codes its output and
does not need Python:

    python3 analysis/tests/data/notebook_reference.py analysis/tests/data
"""
import json
import pathlib
import random
import sys

import mmh3
import pandas as pd
import scipy.stats as ss

# The notebook itself: the benchmark's script, so both run the same code.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
from notebook import user_metrics, welch_rows  # noqa: E402

EXPERIMENT, ARMS = "EXP", 3
out_dir = sys.argv[1]


def arm(user):
    seed = mmh3.hash(EXPERIMENT, 0) & 0xFFFFFFFF
    a = mmh3.hash(str(user), seed, signed=False) % ARMS  # docs/experiments.md#test-vectors
    return "C" if a == 0 else f"T{a}"


rng = random.Random(7)
events = []
clock = 1_700_000_000_000
for user in range(40):
    label = arm(user)
    boost = {"C": 0.0, "T1": 0.15, "T2": -0.1}[label]
    sessions = rng.randint(1, 4)
    open_at_end = user % 7 == 0
    for s in range(sessions + open_at_end):
        n = rng.randint(1, 6)
        track = rng.randrange(100)
        for i in range(n):
            clock += rng.randint(1, 5000)
            last = i == n - 1 and s < sessions
            time = 1.0 if i == 0 else round(min(1.0, max(0.0, rng.random() + boost)), 2)
            e = {"message": "last" if last else "next", "timestamp": clock, "user": user,
                 "track": track, "time": time, "latency": round(rng.uniform(0.0001, 0.01), 6)}
            if not last:
                track = rng.randrange(100)
                e["recommendation"] = track
            e["experiments"] = {"AA": "C", EXPERIMENT: label}
            events.append(e)
# A user logged without the experiment: left out of the table.
events.append({"message": "last", "timestamp": clock + 1, "user": 999, "track": 1, "time": 1.0,
               "latency": 0.001, "experiments": {"AA": "T1"}})
rng.shuffle(events)
lines = [json.dumps(e) for e in events]
lines.insert(10, "this is not json")
lines.insert(20, '{"message": "next", "timestamp": 5, "user": 1}')
with open(f"{out_dir}/notebook-replica-a.jsonl", "w") as f:
    f.write("\n".join(lines[: len(lines) // 2]) + "\n")
with open(f"{out_dir}/notebook-replica-b.jsonl", "w") as f:
    f.write("\n".join(lines[len(lines) // 2:]) + '\n{"message": "next", "time')

# --- the notebook ---------------------------------------------------------
data = pd.DataFrame([e for e in events if EXPERIMENT in e["experiments"]])
data["treatment"] = data["experiments"].map(lambda x: x[EXPERIMENT])
sessions, metrics = user_metrics(data)

open_sessions = sum(
    1 for (_, _), g in data.groupby(["user", "treatment"])
    if g.sort_values("timestamp")["message"].iloc[-1] != "last")
print("events", len(data), "sessions", len(sessions), "open", open_sessions, "users per arm",
      metrics.groupby("treatment").size().to_dict())
print("srm", ss.chisquare(metrics.groupby("treatment").size().values))
for treatment, metric, c, t, cm, tm, lower, upper in welch_rows(metrics, ["T1", "T2"]):
    ci = ss.ttest_ind(t, c, equal_var=False).confidence_interval(0.95)
    assert abs(ci.low / cm * 100 - lower) < 1e-9 and abs(ci.high / cm * 100 - upper) < 1e-9
    values = [float(v) for v in (cm, tm, (tm - cm) / cm * 100, lower, upper)]
    print(f'("{treatment}", "{metric}", {", ".join(map(repr, values))}, '
          f'{str(lower > 0 or upper < 0).lower()}),')
