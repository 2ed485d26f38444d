"""Bulk rows for the API benchmark, written with set-based SQL (generate_series), not the API.

Tasks get distinct creation times one minute apart (newest = `anchor`); events are one an hour,
ending at `anchor`, every tenth of them an all-day event. Both are spread so that the same
queries return full pages for a user with 1,000 rows and for one with 100,000.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

TASKS_SQL = """
INSERT INTO tasks (user_id, title, description, status, priority, task_type, category_id, due_at,
                   estimated_minutes, completed_at, search_text, created_at, updated_at)
SELECT %(user_id)s,
       'Task ' || g,
       CASE WHEN g %% 3 = 0 THEN 'Details of task ' || g END,
       (ARRAY['pending', 'in_progress', 'completed', 'cancelled', 'on_hold'])[1 + g %% 5],
       1 + g %% 4,
       (ARRAY['general', 'coding', 'review', 'testing', 'deployment', 'meeting', 'research',
              'opportunity'])[1 + g %% 8],
       NULL,
       CASE WHEN g %% 4 <> 0 THEN %(anchor)s + ((g * 7) %% 730 - 365) * interval '1 day' END,
       CASE WHEN g %% 2 = 0 THEN 30 + g %% 60 END,
       CASE WHEN g %% 5 = 2 THEN %(anchor)s - g * interval '1 minute' END,
       lower('task ' || g || chr(10) || CASE WHEN g %% 3 = 0 THEN 'details of task ' || g
                                           ELSE '' END),
       %(anchor)s - g * interval '1 minute',
       %(anchor)s - g * interval '1 minute'
FROM generate_series(1, %(count)s) AS g
"""

CALENDAR_SQL = """
INSERT INTO calendars (user_id, google_calendar_id, summary, time_zone, "primary", selected,
                       sync_generation, created_at, updated_at)
VALUES (%(user_id)s, 'bench-' || %(user_id)s || '@example.com', 'Benchmark', 'UTC', true, true,
        0, %(anchor)s, %(anchor)s)
RETURNING id
"""

EVENTS_SQL = """
INSERT INTO calendar_events (user_id, calendar_id, google_event_id, title, description, location,
                             status, all_day, start_at, end_at, start_date, end_date,
                             content_hash, sync_generation, google_updated_at, created_at,
                             updated_at)
SELECT %(user_id)s, %(calendar_id)s, 'event' || g, 'Event ' || g,
       CASE WHEN g %% 3 = 0 THEN 'Agenda of event ' || g END,
       CASE WHEN g %% 4 = 0 THEN 'Room ' || g %% 20 END,
       'confirmed',
       all_day,
       CASE WHEN all_day THEN day::timestamptz ELSE starts END,
       CASE WHEN all_day THEN (day + 1)::timestamptz ELSE starts + interval '45 minutes' END,
       CASE WHEN all_day THEN day END,
       CASE WHEN all_day THEN day + 1 END,
       md5(g::text) || md5(g::text), 0, starts, starts, starts
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT g %% 10 = 0 AS all_day,
                     %(anchor)s - g * interval '1 hour' AS starts,
                     ((%(anchor)s - g * interval '1 hour') AT TIME ZONE 'UTC')::date AS day) AS e
"""


def seed_tasks(connection: psycopg.Connection, user_id: int, count: int, anchor: datetime) -> None:
    connection.execute(TASKS_SQL, {"user_id": user_id, "count": count, "anchor": anchor})


def seed_events(connection: psycopg.Connection, user_id: int, count: int, anchor: datetime) -> None:
    """A selected calendar with `count` events, one an hour up to `anchor`."""
    row = connection.execute(CALENDAR_SQL, {"user_id": user_id, "anchor": anchor}).fetchone()
    assert row is not None
    connection.execute(
        EVENTS_SQL, {"user_id": user_id, "calendar_id": row[0], "count": count, "anchor": anchor}
    )
