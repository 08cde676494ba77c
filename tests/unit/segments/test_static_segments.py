"""Static segments: CSV/JSON lists of visitor or user ids, pseudonymised, imported fast."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.db import connection

from core.pseudonym import pseudonymize
from profiles.models import Profile
from segments import runs
from segments.models import Segment, SegmentMembership, StaticListEntry
from segments.static_lists import (
    StaticListError,
    static_keys_from_csv,
    static_keys_from_ids,
    static_list_add,
    static_list_remove,
)


@pytest.fixture
def static_segment(db) -> Segment:
    return Segment.objects.create(key="vip", name="VIP", kind="static")


def test_static_keys_from_csv__header_user_id__user_type_and_hmac_keys():
    id_type, keys = static_keys_from_csv(io.StringIO("user_id\nu1\nu2\nu1\n\n"))
    assert id_type == "user"
    assert keys == [pseudonymize("u1"), pseudonymize("u2")]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("visitor_id\nv1\n" + "x" * 201 + "\n", "line 3"),
        ("v1\n  \t\x01bad\n", "line 2"),
        ('v1\n"unterminated\n', "line 2"),
    ],
)
def test_static_keys_from_csv__bad_line__refused_naming_it(text, field):
    with pytest.raises(StaticListError) as raised:
        static_keys_from_csv(io.StringIO(text))
    assert raised.value.field.startswith(field.split()[0])
    if field.startswith("line"):
        assert raised.value.field == field


def test_static_keys_from_ids__bad_item__field_with_index():
    with pytest.raises(StaticListError) as raised:
        static_keys_from_ids(["ok", {"x": 1}], field="visitor_ids")
    assert raised.value.field == "visitor_ids[1]"


@pytest.mark.django_db
def test_static_list__add_run_remove__members_follow_and_no_raw_id_stored(static_segment):
    # Given two known visitors and a user-identified profile
    Profile.objects.bulk_create(
        [
            Profile(key=pseudonymize("alice")),
            Profile(key=pseudonymize("bob")),
            Profile(key=pseudonymize("carol"), user_key=pseudonymize("user-42")),
        ]
    )
    # When alice, an unknown visitor and user-42 are listed and the segment runs
    static_list_add(
        segment=static_segment,
        id_type="visitor",
        keys=static_keys_from_ids(["alice", "zed"], field="ids"),
    )
    static_list_add(
        segment=static_segment, id_type="user", keys=static_keys_from_ids(["user-42"], field="ids")
    )
    run = runs.segment_run(segment_id=static_segment.pk)
    # Then alice and carol are members; the unknown id waits on the list
    members = set(
        SegmentMembership.objects.filter(segment=static_segment).values_list(
            "profile__key", flat=True
        )
    )
    assert members == {pseudonymize("alice"), pseudonymize("carol")}
    assert (run.size, run.metrics["list_ids"]) == (2, 3)
    # And no raw id is anywhere in the entries table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {StaticListEntry._meta.db_table}")
        dump = repr(cursor.fetchall())
    for raw in ("alice", "zed", "user-42"):
        assert raw not in dump
    # When alice is removed and it runs again, only carol remains
    static_list_remove(
        segment=static_segment, id_type="visitor", keys=static_keys_from_ids(["alice"], field="ids")
    )
    runs.segment_run(segment_id=static_segment.pk)
    assert SegmentMembership.objects.filter(segment=static_segment).count() == 1


@pytest.mark.django_db
def test_static_list_add__not_static_segment__refused(db):
    segment = Segment.objects.create(key="c", name="C", condition={})
    with pytest.raises(StaticListError) as raised:
        static_list_add(segment=segment, id_type="visitor", keys=["k"])
    assert raised.value.field == "key"
    assert not StaticListEntry.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_segment_import__100k_ids__under_a_minute_with_progress(static_segment, tmp_path, capsys):
    # Given a CSV of 100,000 visitor ids
    path = tmp_path / "ids.csv"
    path.write_text("visitor_id\n" + "".join(f"visitor-{i}\n" for i in range(100_000)))
    # When imported by the management command (progress bar on stderr)
    started = time.monotonic()
    call_command("segment_import", "vip", str(path))
    seconds = time.monotonic() - started
    # Then all are stored, pseudonymised, within a minute, and a progress bar was drawn
    assert StaticListEntry.objects.filter(segment=static_segment).count() == 100_000
    assert StaticListEntry.objects.filter(key=pseudonymize("visitor-99999")).exists()
    assert seconds < 60, seconds
    out = capsys.readouterr()
    assert "100000 visitor ids read, 100000 added" in out.out
    assert "store" in out.err
    assert "100%" in out.err
    # When the same file is imported again, nothing is added
    call_command("segment_import", "vip", str(path), "--no-run")
    assert "0 added" in capsys.readouterr().out


@pytest.mark.django_db
def test_profile_erase__listed_visitor_and_user__static_entries_deleted(static_segment):
    from profiles import privacy

    # Given a visitor listed by visitor id and by user id
    Profile.objects.create(key=pseudonymize("dora"), user_key=pseudonymize("user-7"))
    static_list_add(segment=static_segment, id_type="visitor", keys=[pseudonymize("dora")])
    static_list_add(segment=static_segment, id_type="user", keys=[pseudonymize("user-7")])
    static_list_add(segment=static_segment, id_type="visitor", keys=[pseudonymize("other")])
    # When the visitor is erased
    result = privacy.profile_erase(profile_key=pseudonymize("dora"), actor="test")
    # Then both entries naming them are gone, the other stays
    assert result.counts["static_list_entries"] == 2
    assert list(StaticListEntry.objects.values_list("key", flat=True)) == [pseudonymize("other")]
