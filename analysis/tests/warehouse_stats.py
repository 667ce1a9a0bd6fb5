"""Computes `analysis ab`'s sufficient statistics from an `analysis export`
dataset with one engine, as tests/warehouse.rs compares them with the logs:
analysis/sql/ab_stats.sql in DuckDB, or scripts/spark_ab.py's job in one
local SparkSession (local[2]), each without a start day and with START.

Writes into OUT_DIR, for each engine's run:
  duckdb: all.csv, all.json, start.parquet (DuckDB's COPY), start.csv
  spark:  all.csv, start.json, start.parquet/ (Spark's Parquet folder)

Usage: warehouse_stats.py duckdb|spark EXPORT_DIR EXPERIMENT START OUT_DIR
"""

import importlib.util
import pathlib
import sys

engine, export, experiment, start, out = sys.argv[1:6]
out = pathlib.Path(out)
root = pathlib.Path(__file__).resolve().parent.parent.parent
spec = importlib.util.spec_from_file_location("spark_ab", root / "scripts" / "spark_ab.py")
spark_ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spark_ab)
start = spark_ab.start_date(start)

if engine == "duckdb":
    import duckdb

    con = duckdb.connect()
    glob = str(pathlib.Path(export) / "**" / "*.parquet")
    con.execute(
        f'CREATE VIEW events AS SELECT *, "{experiment}" AS arm '
        f"FROM read_parquet('{glob}', hive_partitioning = true)"
    )
    sql = spark_ab.SQL.read_text()
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
elif engine == "spark":
    spark = spark_ab.session()
    spark_ab.write(spark_ab.statistics(spark, export, experiment), out / "all.csv")
    with_start = spark_ab.statistics(spark, export, experiment, start).cache()
    spark_ab.write(with_start, out / "start.json")
    spark_ab.write(with_start, out / "start.parquet")
    spark.stop()
else:
    sys.exit(f"unknown engine {engine!r}: duckdb or spark")
