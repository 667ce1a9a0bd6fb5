#!/usr/bin/env python3
"""The sufficient statistics of `analysis ab`, computed by Spark over an
`analysis export` Parquet dataset (docs/analysis.md#sufficient-statistics).

    spark-submit scripts/spark_ab.py --export DIR --experiment NAME --out PATH [--start DAY]
        [--segment-by listener|genre|daypart [--catalog tracks.jsonl]] [--trend]
    python3 scripts/spark_ab.py ...            (a local SparkSession, local[2])
    analysis ab --stats PATH --experiment NAME [--metrics ...] [--segment-by BY] [--trend] --format json

Runs analysis/sql/ab_stats.sql over views `events` (the export, with the
experiment's arm as `arm`), `params` (the experiment, its start day, the
segmentation and whether per-day rows are wanted) and `genres` (the
catalog's track genres, for --segment-by genre).
PATH ending in .csv or .json (one object per line) is written by the driver
(the result is one row per arm and metric); any other PATH is written by
Spark as a Parquet folder, which `ab --stats` reads too. --start DAY (a
`day-<n>` folder number n, or YYYY-MM-DD) makes the days before it the
pre-period of CUPED, as `analysis ab --start`.
"""

import argparse
import csv
import datetime
import json
import os
import pathlib
import re
import sys

SQL = pathlib.Path(__file__).resolve().parent.parent / "analysis" / "sql" / "ab_stats.sql"
# `analysis export` dates a `day-<n>` folder's events 2026-01-01 + n − 1.
FIRST_SIMULATED_DAY = datetime.date(2026, 1, 1)


def start_date(text):
    """--start as a date: a folder day number n, or YYYY-MM-DD."""
    if text is None:
        return None
    if re.fullmatch(r"\d+", text):
        return FIRST_SIMULATED_DAY + datetime.timedelta(days=int(text) - 1)
    return datetime.date.fromisoformat(text)


SEGMENTATIONS = ("listener", "genre", "daypart")


def params_sql(experiment, start, segment_by=None, per_day=False):
    """The one-row `params` view's query (same text in DuckDB and Spark)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", experiment):
        raise SystemExit(f"experiment {experiment!r}: expected letters, digits and _")
    if segment_by not in (None, *SEGMENTATIONS):
        raise SystemExit(f"--segment-by {segment_by!r}: expected one of {', '.join(SEGMENTATIONS)}")
    day = f"DATE '{start.isoformat()}'" if start else "CAST(NULL AS DATE)"
    segments = f"'{segment_by}'" if segment_by else "CAST(NULL AS STRING)"
    return (
        f"SELECT '{experiment}' AS experiment, {day} AS start, {segments} AS segment_by, "
        f"{'TRUE' if per_day else 'FALSE'} AS per_day"
    )


def genre_rows(catalog):
    """(track, genre) of a `sim world` tracks.jsonl (tracks without a genre left out)."""
    rows = []
    with open(catalog) as f:
        for line in f:
            if line.strip():
                track = json.loads(line)
                if track.get("genre") is not None:
                    rows.append((int(track["track"]), str(track["genre"])))
    return rows


def genres_sql(rows):
    """The `genres` view's query: the rows as a VALUES list, or an empty view."""
    if not rows:
        return "SELECT CAST(NULL AS BIGINT) AS track, CAST(NULL AS STRING) AS genre WHERE 1 = 0"
    quoted = ", ".join(f"({t}, '{g.replace(chr(39), chr(39) * 2)}')" for t, g in rows)
    return f"SELECT * FROM (VALUES {quoted}) AS genres (track, genre)"


def statistics(spark, export, experiment, start=None, segment_by=None, per_day=False, catalog=None):
    """The statistics as a Spark DataFrame (one row per arm and metric, and
    per group and pair of groups when asked)."""
    spark.read.parquet(str(export)).withColumnRenamed(experiment, "arm").createOrReplaceTempView(
        "events"
    )
    spark.sql(params_sql(experiment, start, segment_by, per_day)).createOrReplaceTempView("params")
    if segment_by == "genre" and catalog is None:
        raise SystemExit("--segment-by genre reads the track genres of --catalog tracks.jsonl")
    rows = genre_rows(catalog) if segment_by == "genre" else []
    schema = "track BIGINT, genre STRING"
    spark.createDataFrame(rows, schema).createOrReplaceTempView("genres")
    return spark.sql(SQL.read_text())


def write_rows(columns, rows, out):
    """CSV or JSON lines from the driver, full double precision."""
    out = pathlib.Path(out)
    if out.suffix == ".csv":
        with out.open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            w.writerows([["" if v is None else repr(v) if isinstance(v, float) else v for v in r] for r in rows])
    else:
        with out.open("w") as f:
            for r in rows:
                f.write(json.dumps(dict(zip(columns, r))) + "\n")


def write(frame, out):
    if str(out).endswith((".csv", ".json")):
        write_rows(frame.columns, [tuple(r) for r in frame.collect()], out)
    else:
        frame.coalesce(1).write.mode("overwrite").parquet(str(out))


def session():
    """spark-submit's session (its --master), else a local one on two cores."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName("botify ab statistics")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Two cores: a few shuffle partitions, not Spark's 200.
        builder = builder.master("local[2]").config("spark.sql.shuffle.partitions", "4")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, help="analysis export's Parquet folder")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--out", required=True, help="PATH.csv, PATH.json, or a Parquet folder")
    parser.add_argument("--start", help="first day of the experiment: n or YYYY-MM-DD")
    parser.add_argument(
        "--segment-by", choices=SEGMENTATIONS, help="add per-segment rows (ab --segment-by)"
    )
    parser.add_argument("--catalog", help="tracks.jsonl whose genres --segment-by genre reads")
    parser.add_argument("--trend", action="store_true", help="add per-day rows (ab --trend)")
    args = parser.parse_args(argv)
    spark = session()
    frame = statistics(
        spark,
        args.export,
        args.experiment,
        start_date(args.start),
        args.segment_by,
        args.trend,
        args.catalog,
    )
    write(frame, args.out)
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
