"""The analysts' pandas/scipy notebook, as a script, for the speed comparison
in BENCHMARKS.md#analysis: same sessionize -> user metrics -> Welch table as
`analysis ab` (and as tests/data/notebook_reference.py).

    python3 analysis/bench/notebook.py EXPERIMENT FILE...
"""
import itertools
import sys
import time

import numpy as np
import pandas as pd
import scipy.stats as ss

experiment, files = sys.argv[1], sys.argv[2:]
started = time.time()
data = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
data["treatment"] = data["experiments"].map(lambda x: x[experiment])


def sessionize(user, treatment, user_data):
    sessions, session = [], None
    for _, row in user_data.sort_values("timestamp").iterrows():
        if session is None:
            session = {"user": user, "treatment": treatment,
                       "tracks": 0, "time": 0.0, "latency": 0.0}
        session["tracks"] += 1
        session["time"] += row["time"]
        session["latency"] += row["latency"] * 1000
        if row["message"] == "last":
            sessions.append(session)
            session = None
    return sessions


sessions = pd.DataFrame(itertools.chain.from_iterable(
    sessionize(user, treatment, group)
    for (user, treatment), group in data.groupby(["user", "treatment"])))
metrics = sessions.groupby(["user", "treatment"]).agg(
    time=("time", "sum"),
    sessions=("time", "count"),
    latency=("latency", "sum"),
    tracks=("tracks", "sum"),
    mean_tracks_per_session=("tracks", "mean"),
    mean_time_per_session=("time", "mean"),
).reset_index()
metrics["mean_request_latency"] = metrics["latency"] / metrics["tracks"]
for treatment in sorted(t for t in metrics.treatment.unique() if t != "C"):
    for metric in ["time", "sessions", "mean_request_latency",
                   "mean_tracks_per_session", "mean_time_per_session"]:
        c = metrics[metrics.treatment == "C"][metric]
        t = metrics[metrics.treatment == treatment][metric]
        cm, tm, cv, tv, cn, tn = c.mean(), t.mean(), c.var(), t.var(), len(c), len(t)
        se2 = cv / cn + tv / tn
        dof = se2 ** 2 / ((cv / cn) ** 2 / (cn - 1) + (tv / tn) ** 2 / (tn - 1))
        half = ss.t.ppf(0.975, dof) * np.sqrt(se2)
        print(treatment, metric, f"{(tm - cm) / cm * 100:+.2f}%",
              f"[{(tm - cm - half) / cm * 100:+.2f}%, {(tm - cm + half) / cm * 100:+.2f}%]")
elapsed = time.time() - started
print(f"{len(data)} events in {elapsed:.1f}s: {len(data) / elapsed:,.0f} events/s", file=sys.stderr)
