"""`column IN (many values)` that stays cheap for thousands of values on PostgreSQL.

Django's psycopg backend binds parameters client-side: an `__in` filter with 5,000 values costs
tens of milliseconds of Python to quote and splice. On PostgreSQL the values travel instead as one
comma-joined string (`= ANY(string_to_array(%s, ','))`); other databases use `__in`. Only for
values that cannot contain a comma (ids, UUIDs, hex keys).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet


def filter_in(queryset: QuerySet, field_name: str, values: Iterable, *, cast: str) -> QuerySet:
    """`queryset.filter(<field_name>__in=values)`; `cast` is the column's PostgreSQL type."""
    values = [str(v) for v in values]
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{field_name}__in": values})
    meta = queryset.model._meta
    quote = connection.ops.quote_name
    column = f"{quote(meta.db_table)}.{quote(meta.get_field(field_name).column)}"
    return queryset.extra(
        where=[f"{column} = ANY(string_to_array(%s, ',')::{cast}[])"], params=[",".join(values)]
    )
