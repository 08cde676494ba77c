"""manage.py import_events: real CDNOW transactions as purchase events, idempotent re-runs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.pseudonym import pseudonymize
from profiles.models import Event, Profile
from profiles.selectors import profile_get_cached

LINES = 3000


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_events", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def cdnow(shared_dir):
    path = shared_dir / "data" / "cdnow" / "CDNOW_master.txt"
    if not path.is_file():
        pytest.skip(f"CDNOW data not found at {path}")
    return path


@pytest.mark.django_db
def test_import_events__cdnow_first_lines__stored_then_rerun_adds_nothing(cdnow):
    # Given the first 3000 lines of the real CDNOW file (one header line)
    # When they are imported
    first = run(str(cdnow), "--format", "cdnow", "--limit", str(LINES), "--batch-size", "700")
    # Then every transaction is a purchase event with its value, on a pseudonymous profile
    assert f"{LINES - 1} rows, {LINES - 1} new events" in first
    assert Event.objects.count() == LINES - 1
    assert set(Event.objects.values_list("type", flat=True)) == {"purchase"}
    customer = Profile.objects.get(key=pseudonymize("cdnow:00001"))
    event = customer.events.get()
    assert str(event.value) == "11.77"
    assert event.occurred_at.date().isoformat() == "1997-01-01"
    assert customer.aggregates["purchase_count"] == 1
    # And the decision path's cached document is written
    assert profile_get_cached(profile_key=customer.key)["aggregates"]["monetary"] == 11.77
    # When the same lines are imported again
    again = run(str(cdnow), "--format", "cdnow", "--limit", str(LINES))
    # Then nothing new is stored
    assert f"{LINES - 1} rows, 0 new events" in again
    assert Event.objects.count() == LINES - 1


@pytest.mark.django_db
def test_import_events__csv_format__imported_idempotently(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "visitor,occurred_at,value,currency\n"
        "u-1,2024-05-01T10:00:00+00:00,19.90,eur\n"
        "u-1,2024-05-02,5,EUR\n"
        "u-2,2024-05-02T12:00:00,7.5,\n"
    )
    assert "3 rows, 3 new events" in run(str(path), "--format", "csv")
    assert "3 rows, 0 new events" in run(str(path), "--format", "csv")
    assert Profile.objects.get(key=pseudonymize("u-1")).aggregates["monetary"] == 24.9


@pytest.mark.django_db
def test_import_events__bad_row__error_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(" 00001 19970101 1 11.77\n 00002 1997xx12 1 12.00\n")
    with pytest.raises(CommandError, match="line 2"):
        run(str(path))


def test_import_events__missing_file__error():
    with pytest.raises(CommandError, match="No such file"):
        run("/nonexistent/file.txt")
