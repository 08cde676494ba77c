"""Model scores on profiles (Profile.scores), one namespace per model ("rfm", later others).

Each write touches its own namespace only (jsonb_set / json_set in the database), so models
written by different tasks, and ingestion's own writes to other columns, never undo each other.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from profiles.models import Profile


def profile_scores_write(*, namespace: str, values: dict[int, dict[str, Any] | None]) -> int:
    """Set (a dict) or remove (None) `namespace` in these profiles' scores; one statement per
    kind of change. Returns the number of profiles written."""
    if not namespace.isidentifier():
        raise ValueError(f"bad score namespace {namespace!r}")
    table = connection.ops.quote_name(Profile._meta.db_table)
    sets = [(pid, value) for pid, value in values.items() if value is not None]
    removes = [pid for pid, value in values.items() if value is None]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if sets:
                cursor.execute(
                    f"UPDATE {table} AS p SET scores = jsonb_set(p.scores, %s, v.value)"
                    " FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, value jsonb)"
                    " WHERE p.id = v.id",
                    ["{" + namespace + "}", json.dumps([{"id": i, "value": v} for i, v in sets])],
                )
            if removes:
                cursor.execute(
                    f"UPDATE {table} SET scores = scores - %s"
                    " WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
                    [namespace, ",".join(map(str, removes))],
                )
        else:
            path = f"$.{namespace}"
            if sets:
                cursor.executemany(
                    f"UPDATE {table} SET scores = json_set(scores, %s, json(%s)) WHERE id = %s",
                    [(path, json.dumps(v), i) for i, v in sets],
                )
            if removes:
                cursor.executemany(
                    f"UPDATE {table} SET scores = json_remove(scores, %s) WHERE id = %s",
                    [(path, i) for i in removes],
                )
    return len(values)
