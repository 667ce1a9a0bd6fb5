"""The analysts' pandas/scipy notebook, as a script, for the speed comparison
in BENCHMARKS.md#analysis: same sessionize -> user metrics -> Welch table as
`analysis ab`. tests/data/notebook_reference.py imports its functions to
compute the expected table of tests/notebook_table.rs.

    python3 analysis/bench/notebook.py EXPERIMENT FILE...
"""
import itertools
import sys
import time

import numpy as np
import pandas as pd
import scipy.stats as ss

METRICS = ["time", "sessions", "mean_request_latency",
           "mean_tracks_per_session", "mean_time_per_session"]


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


def user_metrics(data):
    """Events with a `treatment` column -> (closed sessions, per-user metrics)."""
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
    # The notebook's latency: each user's latency sum over their track sum.
    metrics["mean_request_latency"] = metrics["latency"] / metrics["tracks"]
    return sessions, metrics


def welch_rows(metrics, treatments):
    """Per treatment and metric: (treatment, metric, control values, treatment
    values, control mean, treatment mean, lower, upper), bounds of the 95%
    Welch interval in percent of the control mean."""
    for treatment in treatments:
        for metric in METRICS:
            c = metrics[metrics.treatment == "C"][metric]
            t = metrics[metrics.treatment == treatment][metric]
            cm, tm, cv, tv, cn, tn = c.mean(), t.mean(), c.var(), t.var(), len(c), len(t)
            se2 = cv / cn + tv / tn
            dof = se2 ** 2 / ((cv / cn) ** 2 / (cn - 1) + (tv / tn) ** 2 / (tn - 1))
            half = ss.t.ppf(0.975, dof) * np.sqrt(se2)
            lower, upper = (tm - cm - half) / cm * 100, (tm - cm + half) / cm * 100
            yield treatment, metric, c, t, cm, tm, lower, upper


def main():
    experiment, files = sys.argv[1], sys.argv[2:]
    started = time.time()
    data = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    data["treatment"] = data["experiments"].map(lambda x: x[experiment])
    _, metrics = user_metrics(data)
    treatments = sorted(t for t in metrics.treatment.unique() if t != "C")
    for treatment, metric, _, _, cm, tm, lower, upper in welch_rows(metrics, treatments):
        print(treatment, metric, f"{(tm - cm) / cm * 100:+.2f}%",
              f"[{lower:+.2f}%, {upper:+.2f}%]")
    elapsed = time.time() - started
    print(f"{len(data)} events in {elapsed:.1f}s: {len(data) / elapsed:,.0f} events/s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
