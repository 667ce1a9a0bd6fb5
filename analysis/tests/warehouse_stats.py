"""Computes `analysis ab`'s sufficient statistics from an `analysis export`
dataset with one engine, as tests/warehouse.rs compares them with the logs:
analysis/sql/ab_stats.sql in DuckDB, or scripts/spark_ab.py's job in one
local SparkSession (local[2]), each without a start day and with START,
and with START plus per-segment and per-day rows.

Writes into OUT_DIR, for each engine's run:
  duckdb: all.csv, all.json, start.parquet (DuckDB's COPY), start.csv,
          grouped-listener.json, grouped-daypart.csv (each with per-day rows)
  spark:  all.csv, start.json, start.parquet/ (Spark's Parquet folder),
          grouped-genre.json (with per-day rows)

Usage: warehouse_stats.py duckdb|spark EXPORT_DIR EXPERIMENT START OUT_DIR CATALOG
"""

import importlib.util
import pathlib
import sys

engine, export, experiment, start, out, catalog = sys.argv[1:7]
out = pathlib.Path(out)
root = pathlib.Path(__file__).resolve().parent.parent.parent
spec = importlib.util.spec_from_file_location("spark_ab", root / "scripts" / "spark_ab.py")
spark_ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spark_ab)
start = spark_ab.start_date(start)

if engine == "duckdb":
    import duckdb

    con = duckdb.connect()
    # Dayparts are UTC hours, as `analysis ab` tells them.
    con.execute("SET TimeZone = 'UTC'")
    glob = str(pathlib.Path(export) / "**" / "*.parquet")
    con.execute(
        f'CREATE VIEW events AS SELECT *, "{experiment}" AS arm '
        f"FROM read_parquet('{glob}', hive_partitioning = true)"
    )
    sql = spark_ab.SQL.read_text()
    con.execute(f"CREATE VIEW genres AS {spark_ab.genres_sql([])}")
    for name, day in [("all", None), ("start", start)]:
        con.execute(f"CREATE OR REPLACE VIEW params AS {spark_ab.params_sql(experiment, day)}")
        con.execute(f"CREATE OR REPLACE TABLE stats AS {sql}")
        frame = con.execute("SELECT * FROM stats")
        columns = [d[0] for d in frame.description]
        rows = frame.fetchall()
        spark_ab.write_rows(columns, rows, out / f"{name}.csv")
        if name == "all":
            spark_ab.write_rows(columns, rows, out / "all.json")
        else:
            con.execute(f"COPY stats TO '{out / 'start.parquet'}' (FORMAT parquet)")
    for by, suffix in [("listener", "json"), ("daypart", "csv")]:
        params = spark_ab.params_sql(experiment, start, by, per_day=True)
        con.execute(f"CREATE OR REPLACE VIEW params AS {params}")
        frame = con.execute(sql)
        columns = [d[0] for d in frame.description]
        spark_ab.write_rows(columns, frame.fetchall(), out / f"grouped-{by}.{suffix}")
elif engine == "spark":
    spark = spark_ab.session()
    spark_ab.write(spark_ab.statistics(spark, export, experiment), out / "all.csv")
    with_start = spark_ab.statistics(spark, export, experiment, start).cache()
    spark_ab.write(with_start, out / "start.json")
    spark_ab.write(with_start, out / "start.parquet")
    grouped = spark_ab.statistics(spark, export, experiment, start, "genre", True, catalog)
    spark_ab.write(grouped, out / "grouped-genre.json")
    spark.stop()
else:
    sys.exit(f"unknown engine {engine!r}: duckdb or spark")
