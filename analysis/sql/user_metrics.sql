-- Per-user A/B metrics of `analysis ab` (docs/analysis.md#user-metrics), from
-- a Parquet export (`analysis export`). Reads a view `events` of the export
-- whose column `arm` is the experiment's arm label; the README shows how to
-- define it in DuckDB and in Spark SQL, which both run this query as it is.
WITH numbered AS (
    SELECT
        user,
        arm,
        time,
        latency,
        message,
        -- A session ends at `last`: an event's session is the number of
        -- `last` events before it in its (user, arm) stream, in time order
        -- (seq breaks timestamp ties as `analysis ab` does).
        COALESCE(SUM(CASE WHEN message = 'last' THEN 1 ELSE 0 END) OVER (
            PARTITION BY user, arm
            ORDER BY timestamp, seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS session
    FROM events
    WHERE arm IS NOT NULL
),
sessions AS (
    SELECT
        user,
        arm,
        session,
        COUNT(*) AS tracks,
        SUM(time) AS time,
        SUM(latency * 1000) AS latency_ms
    FROM numbered
    GROUP BY user, arm, session
    -- The session still open when the log ends has no `last`: left out.
    HAVING MAX(CASE WHEN message = 'last' THEN 1 ELSE 0 END) = 1
)
SELECT
    user,
    arm,
    SUM(time) AS time,
    COUNT(*) AS sessions,
    -- The notebook's formula: each user's latency sum over their track sum.
    SUM(latency_ms) / SUM(tracks) AS mean_request_latency,
    AVG(tracks) AS mean_tracks_per_session,
    AVG(time) AS mean_time_per_session
FROM sessions
GROUP BY user, arm
ORDER BY user, arm
