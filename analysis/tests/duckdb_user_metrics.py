"""Reads an `analysis export` dataset with DuckDB and prints, as JSON on
stdout, what tests/parquet_export.rs compares with the analysis crate:

- `users`: the per-user A/B metrics of analysis/sql/user_metrics.sql, one
  [user, arm, time, sessions, mean_request_latency, mean_tracks_per_session,
  mean_time_per_session] per (user, arm);
- `partitions`: [day, arm, rows] per partition folder (arm null for events
  without the experiment);
- `rows`, `seq`: the row count and the sorted seq column's min and max;
- `fallbacks`, `recommenders`: rows with fallback = true, rows per recommender.

Usage: duckdb_user_metrics.py EXPORT_DIR EXPERIMENT
"""

import json
import pathlib
import sys

import duckdb

export, experiment = sys.argv[1], sys.argv[2]
sql = (pathlib.Path(__file__).parent.parent / "sql" / "user_metrics.sql").read_text()

con = duckdb.connect()
glob = str(pathlib.Path(export) / "**" / "*.parquet")
con.execute(
    f"CREATE VIEW events AS SELECT *, \"{experiment}\" AS arm "
    f"FROM read_parquet('{glob}', hive_partitioning = true)"
)
users = con.execute(sql).fetchall()
partitions = con.execute(
    "SELECT CAST(day AS VARCHAR), arm, COUNT(*) FROM events GROUP BY ALL ORDER BY ALL"
).fetchall()
rows, seq_min, seq_max, distinct_seq = con.execute(
    "SELECT COUNT(*), MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM events"
).fetchone()
fallbacks = con.execute("SELECT COUNT(*) FROM events WHERE fallback").fetchone()[0]
recommenders = con.execute(
    "SELECT recommender, COUNT(*) FROM events WHERE recommender IS NOT NULL GROUP BY ALL ORDER BY ALL"
).fetchall()
json.dump(
    {
        "users": [list(u) for u in users],
        "partitions": [list(p) for p in partitions],
        "rows": rows,
        "seq": [seq_min, seq_max, distinct_seq],
        "fallbacks": fallbacks,
        "recommenders": [list(r) for r in recommenders],
    },
    sys.stdout,
)
