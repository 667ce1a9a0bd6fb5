-- Sufficient statistics of `analysis ab` (docs/analysis.md#sufficient-statistics):
-- per arm and metric of `ab --metrics all`, the sums the statistics engine
-- needs, which `analysis ab --stats FILE` turns into the same table, report
-- and JSON as from the raw logs.
--
-- Reads three views, which the runner defines (DuckDB and Spark SQL differ
-- only there; docs/analysis.md#dialects):
--   events  the Parquet export of `analysis export`, with the experiment's
--           arm label as a column `arm` (NULL for events without it);
--   params  one row: `experiment` (the name, copied into the output),
--           `start` (DATE, the experiment's first day, or NULL for none; the
--           days before it are the pre-period of CUPED, as `ab --start`),
--           `segment_by` (STRING: 'listener', 'genre' or 'daypart' adds
--           per-segment rows, as `ab --segment-by`; NULL for none) and
--           `per_day` (BOOLEAN: adds per-day rows, as `ab --trend`);
--   genres  `track`, `genre`: the catalog's genres, one row per track
--           (read for `segment_by` 'genre'; may be empty otherwise).
--
-- One output row per (arm, metric) over every user and the whole window,
-- and with a grouping, one per (arm, metric, group) and per (arm, metric,
-- pair of groups that share users), with:
--   experiment, arm, metric      the keys;
--   grouping, segment, other     NULL, NULL, NULL on the whole-window rows.
--                                Group rows: the grouping ('listener',
--                                'genre', 'daypart'; 'day' for one day
--                                alone, 'through' for the window up to
--                                that day) and the group (a segment, or a
--                                day as YYYY-MM-DD); `other` NULL.
--                                Pair rows: `other` is the second group
--                                (segment < other), and the sums below are
--                                over the users in both: side a's in n,
--                                sum_y…sum_yd, and the cross sums in
--                                sum_y_other, sum_d_other, sum_y_y_other,
--                                sum_y_d_other, sum_d_y_other,
--                                sum_d_d_other (segments and days whose
--                                means covary through shared users);
--   first_day, last_day          the window, as YYYY-MM-DD;
--   users                        the arm's users over the window, or in the
--                                group (SRM);
--   n, sum_y, sum_y2             users who count for the metric, Σy, Σy²;
--                                y is the user's value, or the numerator of
--                                a ratio metric;
--   sum_d, sum_d2, sum_yd        ratio metrics: Σd, Σd², Σy·d of the
--                                denominators (NULL for user metrics);
--   n_x, sum_x, sum_x2, sum_xy,  with a pre-period (NULL without): users with
--   sum_xd, sum_y_x, sum_d_x     the covariate x (the same metric over their
--                                pre-period), Σx, Σx², Σx·y, Σx·d, and Σy,
--                                Σd over those users (CUPED; whole-window
--                                rows only).
--
-- Portable SQL: date + integer, comparisons and HOUR() (of the session's
-- first event, in the session time zone, which the runner sets to UTC) only,
-- no other dialect's date functions; every sum is a DOUBLE and every count a
-- BIGINT.
WITH numbered AS (
    SELECT
        user,
        arm,
        day,
        message,
        track,
        timestamp,
        time,
        latency,
        fallback,
        -- A session ends at `last`: an event's session is the number of
        -- `last` events before it in its (user, arm) stream, in time order
        -- (seq breaks timestamp ties as `analysis ab` does).
        COALESCE(SUM(CASE WHEN message = 'last' THEN 1 ELSE 0 END) OVER (
            PARTITION BY user, arm
            ORDER BY timestamp, seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS session,
        LAG(message) OVER (PARTITION BY user, arm ORDER BY timestamp, seq) AS previous_message,
        LAG(recommendation) OVER (PARTITION BY user, arm ORDER BY timestamp, seq)
            AS previous_recommendation
    FROM events
    WHERE arm IS NOT NULL
),
sessions AS (
    SELECT
        user,
        arm,
        -- A session's day is the day of its first event, its first track
        -- the listener's own pick.
        MAX(CASE WHEN previous_message IS NULL OR previous_message = 'last' THEN day END) AS day,
        MAX(CASE WHEN previous_message IS NULL OR previous_message = 'last' THEN track END)
            AS first_track,
        MIN(timestamp) AS started,
        COUNT(*) AS tracks,
        SUM(time) AS time,
        SUM(latency * 1000) AS latency_ms,
        SUM(CASE WHEN fallback THEN 1 ELSE 0 END) AS fallbacks,
        -- Broken chain: some event's track is not the previous event's
        -- recommendation.
        MAX(CASE
            WHEN previous_message IS NOT NULL AND previous_message <> 'last'
                 AND previous_recommendation IS NOT NULL
                 AND previous_recommendation <> track THEN 1
            ELSE 0
        END) AS broken
    FROM numbered
    GROUP BY user, arm, session
    -- The session still open when the log ends has no `last`: left out.
    HAVING MAX(CASE WHEN message = 'last' THEN 1 ELSE 0 END) = 1
),
bounds AS (
    SELECT MIN(day) AS span_first, MAX(day) AS last_day FROM sessions
),
span AS (
    SELECT
        p.experiment AS experiment,
        COALESCE(p.start, b.span_first) AS first_day,
        b.last_day AS last_day,
        -- The pre-period: the days before `start`, when there are any.
        CASE WHEN p.start > b.span_first THEN 1 ELSE 0 END AS has_pre,
        p.segment_by AS segment_by,
        p.per_day AS per_day
    FROM bounds b CROSS JOIN params p
),
-- Listeners with a session before the window: returning, decided before
-- any treatment.
returners AS (
    SELECT DISTINCT s.user
    FROM sessions s CROSS JOIN span w
    WHERE s.day < w.first_day
),
-- The window's sessions, each with its segment under the grouping.
windowed AS (
    SELECT
        s.*,
        w.segment_by,
        w.per_day,
        w.last_day AS horizon,
        CASE w.segment_by
            WHEN 'listener' THEN CASE WHEN r.user IS NULL THEN 'new' ELSE 'returning' END
            WHEN 'genre' THEN COALESCE(g.genre, 'unknown')
            WHEN 'daypart' THEN CASE
                WHEN HOUR(s.started) < 6 THEN 'night'
                WHEN HOUR(s.started) < 12 THEN 'morning'
                WHEN HOUR(s.started) < 18 THEN 'afternoon'
                ELSE 'evening'
            END
        END AS segment
    FROM sessions s
    CROSS JOIN span w
    LEFT JOIN returners r ON r.user = s.user
    LEFT JOIN genres g ON g.track = s.first_track
    WHERE s.day >= w.first_day AND s.day <= w.last_day
),
window_days AS (
    SELECT DISTINCT day FROM windowed WHERE per_day
),
-- Sessions of the window (period 'experiment', per user and arm), of the
-- pre-period (period 'pre', per user, every arm together) and of each group
-- (periods 'segment', 'day' and 'through', `grp` the group), each with the
-- last day its return rates may look at.
periods AS (
    SELECT 'experiment' AS period, CAST(NULL AS STRING) AS grp, user, arm, day, tracks, time,
           latency_ms, fallbacks, broken, horizon
    FROM windowed
    UNION ALL
    SELECT 'pre' AS period, CAST(NULL AS STRING) AS grp, s.user, 'pre' AS arm, s.day, s.tracks,
           s.time, s.latency_ms, s.fallbacks, s.broken, w.first_day - 1 AS horizon
    FROM sessions s CROSS JOIN span w
    WHERE w.has_pre = 1 AND s.day < w.first_day
    UNION ALL
    SELECT 'segment' AS period, segment AS grp, user, arm, day, tracks, time, latency_ms,
           fallbacks, broken, horizon
    FROM windowed
    WHERE segment_by IS NOT NULL
    UNION ALL
    SELECT 'day' AS period, CAST(day AS STRING) AS grp, user, arm, day, tracks, time,
           latency_ms, fallbacks, broken, day AS horizon
    FROM windowed
    WHERE per_day
    UNION ALL
    SELECT 'through' AS period, CAST(d.day AS STRING) AS grp, s.user, s.arm, s.day, s.tracks,
           s.time, s.latency_ms, s.fallbacks, s.broken, d.day AS horizon
    FROM windowed s JOIN window_days d ON s.day <= d.day
),
first_days AS (
    SELECT periods.*, MIN(day) OVER (PARTITION BY period, grp, user, arm) AS first_active
    FROM periods
),
user_sums AS (
    SELECT
        period,
        grp,
        user,
        arm,
        CAST(SUM(time) AS DOUBLE) AS time,
        CAST(COUNT(*) AS DOUBLE) AS sessions,
        CAST(SUM(tracks) AS DOUBLE) AS tracks,
        CAST(SUM(latency_ms) AS DOUBLE) AS latency_ms,
        CAST(SUM(tracks - 1) AS DOUBLE) AS answers,
        CAST(SUM(fallbacks) AS DOUBLE) AS fallbacks,
        CAST(SUM(broken) AS DOUBLE) AS broken,
        CAST(COUNT(DISTINCT day) AS DOUBLE) AS active_days,
        -- Return rates: NULL (no verdict) when the horizon lies past the
        -- period's last day.
        CASE WHEN MIN(first_active) + 1 <= MIN(horizon) THEN
            CAST(MAX(CASE WHEN day = first_active + 1 THEN 1 ELSE 0 END) AS DOUBLE)
        END AS return_d1,
        CASE WHEN MIN(first_active) + 7 <= MIN(horizon) THEN
            CAST(MAX(CASE WHEN day > first_active AND day <= first_active + 7 THEN 1 ELSE 0 END)
                 AS DOUBLE)
        END AS return_d7
    FROM first_days
    GROUP BY period, grp, user, arm
),
-- One row per (user, metric): y, and d for ratio metrics; NULL y means the
-- user does not count for the metric.
observations AS (
    SELECT
        u.period,
        u.grp,
        u.user,
        u.arm,
        m.metric,
        CASE m.metric
            WHEN 'time' THEN u.time
            WHEN 'sessions' THEN u.sessions
            WHEN 'mean_tracks_per_session' THEN u.tracks / u.sessions
            WHEN 'mean_time_per_session' THEN u.time / u.sessions
            WHEN 'active_days' THEN u.active_days
            WHEN 'sessions_per_active_day' THEN u.sessions / u.active_days
            WHEN 'time_per_day' THEN u.time / u.active_days
            WHEN 'return_d1' THEN u.return_d1
            WHEN 'return_d7' THEN u.return_d7
            WHEN 'session_time' THEN u.time
            WHEN 'session_tracks' THEN u.tracks
            WHEN 'mean_request_latency' THEN u.latency_ms / u.tracks
            WHEN 'fallback_rate' THEN u.fallbacks
            WHEN 'error_rate' THEN u.broken
        END AS y,
        CASE m.metric
            WHEN 'session_time' THEN u.sessions
            WHEN 'session_tracks' THEN u.sessions
            WHEN 'fallback_rate' THEN u.answers
            WHEN 'error_rate' THEN u.sessions
        END AS d
    FROM user_sums u
    CROSS JOIN (
        VALUES ('time'), ('sessions'), ('mean_tracks_per_session'),
               ('mean_time_per_session'), ('active_days'), ('sessions_per_active_day'),
               ('time_per_day'), ('return_d1'), ('return_d7'), ('session_time'),
               ('session_tracks'), ('mean_request_latency'), ('fallback_rate'),
               ('error_rate')
    ) AS m (metric)
),
counted AS (
    SELECT * FROM observations
    -- A ratio with nothing in its denominator does not count.
    WHERE y IS NOT NULL AND (d IS NULL OR d > 0)
),
-- Each user's covariate: the same metric over the pre-period (a ratio
-- metric's: the user's own ratio).
covariates AS (
    SELECT user, metric, y / COALESCE(d, 1) AS x
    FROM counted
    WHERE period = 'pre'
),
paired AS (
    SELECT e.arm, e.metric, e.y, e.d, c.x
    FROM counted e
    LEFT JOIN covariates c ON c.user = e.user AND c.metric = e.metric
    WHERE e.period = 'experiment'
),
arm_users AS (
    SELECT arm, COUNT(*) AS users
    FROM user_sums
    WHERE period = 'experiment'
    GROUP BY arm
),
group_users AS (
    SELECT period, grp, arm, COUNT(*) AS users
    FROM user_sums
    WHERE period IN ('segment', 'day', 'through')
    GROUP BY period, grp, arm
)
SELECT
    w.experiment AS experiment,
    p.arm AS arm,
    p.metric AS metric,
    CAST(NULL AS STRING) AS grouping,
    CAST(NULL AS STRING) AS segment,
    CAST(NULL AS STRING) AS other,
    CAST(MAX(w.first_day) AS STRING) AS first_day,
    CAST(MAX(w.last_day) AS STRING) AS last_day,
    CAST(MAX(a.users) AS BIGINT) AS users,
    CAST(COUNT(*) AS BIGINT) AS n,
    CAST(SUM(p.y) AS DOUBLE) AS sum_y,
    CAST(SUM(p.y * p.y) AS DOUBLE) AS sum_y2,
    CAST(SUM(p.d) AS DOUBLE) AS sum_d,
    CAST(SUM(p.d * p.d) AS DOUBLE) AS sum_d2,
    CAST(SUM(p.y * p.d) AS DOUBLE) AS sum_yd,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN COUNT(p.x) END AS BIGINT) AS n_x,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN COALESCE(SUM(p.x), 0) END AS DOUBLE) AS sum_x,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN COALESCE(SUM(p.x * p.x), 0) END AS DOUBLE) AS sum_x2,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN COALESCE(SUM(p.x * p.y), 0) END AS DOUBLE) AS sum_xy,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN SUM(p.x * p.d) END AS DOUBLE) AS sum_xd,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN COALESCE(SUM(CASE WHEN p.x IS NOT NULL THEN p.y END), 0) END
         AS DOUBLE) AS sum_y_x,
    CAST(CASE WHEN MAX(w.has_pre) = 1 THEN SUM(CASE WHEN p.x IS NOT NULL THEN p.d END) END
         AS DOUBLE) AS sum_d_x,
    CAST(NULL AS DOUBLE) AS sum_y_other,
    CAST(NULL AS DOUBLE) AS sum_d_other,
    CAST(NULL AS DOUBLE) AS sum_y_y_other,
    CAST(NULL AS DOUBLE) AS sum_y_d_other,
    CAST(NULL AS DOUBLE) AS sum_d_y_other,
    CAST(NULL AS DOUBLE) AS sum_d_d_other
FROM paired p
CROSS JOIN span w
JOIN arm_users a ON a.arm = p.arm
GROUP BY w.experiment, p.arm, p.metric
UNION ALL
-- One row per group: a segment, a day alone, or the window up to a day.
SELECT
    w.experiment,
    c.arm,
    c.metric,
    CASE WHEN c.period = 'segment' THEN MAX(w.segment_by) ELSE c.period END,
    c.grp,
    CAST(NULL AS STRING),
    CAST(MAX(w.first_day) AS STRING),
    CAST(MAX(w.last_day) AS STRING),
    CAST(MAX(g.users) AS BIGINT),
    CAST(COUNT(*) AS BIGINT),
    CAST(SUM(c.y) AS DOUBLE),
    CAST(SUM(c.y * c.y) AS DOUBLE),
    CAST(SUM(c.d) AS DOUBLE),
    CAST(SUM(c.d * c.d) AS DOUBLE),
    CAST(SUM(c.y * c.d) AS DOUBLE),
    CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
    CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
    CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
    CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE)
FROM counted c
CROSS JOIN span w
JOIN group_users g ON g.period = c.period AND g.grp = c.grp AND g.arm = c.arm
WHERE c.period IN ('segment', 'day', 'through')
GROUP BY w.experiment, c.arm, c.metric, c.period, c.grp
UNION ALL
-- One row per pair of segments, or of days, that share users.
SELECT
    w.experiment,
    a.arm,
    a.metric,
    CASE WHEN a.period = 'segment' THEN MAX(w.segment_by) ELSE a.period END,
    a.grp,
    b.grp,
    CAST(MAX(w.first_day) AS STRING),
    CAST(MAX(w.last_day) AS STRING),
    CAST(NULL AS BIGINT),
    CAST(COUNT(*) AS BIGINT),
    CAST(SUM(a.y) AS DOUBLE),
    CAST(SUM(a.y * a.y) AS DOUBLE),
    CAST(SUM(a.d) AS DOUBLE),
    CAST(SUM(a.d * a.d) AS DOUBLE),
    CAST(SUM(a.y * a.d) AS DOUBLE),
    CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
    CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
    CAST(SUM(b.y) AS DOUBLE),
    CAST(SUM(b.d) AS DOUBLE),
    CAST(SUM(a.y * b.y) AS DOUBLE),
    CAST(SUM(a.y * b.d) AS DOUBLE),
    CAST(SUM(a.d * b.y) AS DOUBLE),
    CAST(SUM(a.d * b.d) AS DOUBLE)
FROM counted a
JOIN counted b
    ON b.period = a.period AND b.user = a.user AND b.arm = a.arm AND b.metric = a.metric
       AND a.grp < b.grp
CROSS JOIN span w
WHERE a.period IN ('segment', 'day')
GROUP BY w.experiment, a.arm, a.metric, a.period, a.grp, b.grp
ORDER BY arm, metric, grouping, segment, other
