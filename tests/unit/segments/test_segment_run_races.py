"""Issue #13, item 16: a segment run races an identify merge that deletes a profile it read.

The review saw a recompute fail with a foreign-key IntegrityError: the run read the profiles,
an identify merged one of them away (deleting its row), and the run's swap then inserted a
membership for the deleted profile. The interleaving is made deterministic here: the real
condition kind computes the members, then the real identify service merges one of them away,
then the run writes its swap. Real commits (transaction=True), so the foreign key is checked as
in production (SQLite and PostgreSQL both check Django's deferred foreign keys at commit).
"""

from __future__ import annotations

import pytest

from identity.services import visitor_identify, visitor_set_traits
from profiles.models import Profile
from segments.kinds import get_kind
from segments.models import RunStatus, SegmentMembership, SegmentRun
from segments.tasks import segment_run as segment_run_task
from tests.factories import make_segment


@pytest.fixture
def merge_after_compute(monkeypatch):
    """Make the condition kind's compute run `action()` after it has read the profiles (between
    the run's read and its membership write), once."""
    kind = get_kind("condition")
    real_compute = kind.compute
    pending: list = []

    def compute(segment, *, progress):
        result = real_compute(segment, progress=progress)
        while pending:
            pending.pop()()
        return result

    monkeypatch.setattr(kind, "compute", compute)
    return pending.append


@pytest.mark.django_db(transaction=True)
def test_segment_run__profile_merged_away_mid_run__run_succeeds_without_it(merge_after_compute):
    # Given two gold visitors, the first already identified as user u1, and a gold segment
    first = visitor_set_traits(visitor="first", traits={"tier": "gold"})
    second = visitor_set_traits(visitor="second", traits={"tier": "gold"})
    visitor_identify(visitor="first", user_id="u1")
    segment = make_segment("gold", {"profile.traits.tier": "gold"})
    segment_pk = segment.pk

    # When the run has read both profiles and, before its swap, the second visitor identifies
    # as u1 (the merge deletes its profile: the oldest, the first, survives)
    merge_after_compute(lambda: visitor_identify(visitor="second", user_id="u1"))
    outcome = segment_run_task.apply(args=[segment_pk])

    # Then the run is not lost to an IntegrityError: it succeeds (or its retry does) and the
    # membership holds the survivor only
    assert not Profile.objects.filter(pk=second.pk).exists(), "the merge did not happen"
    assert outcome.successful(), outcome.traceback
    assert outcome.result["status"] == RunStatus.SUCCEEDED, outcome.result
    members = set(
        SegmentMembership.objects.filter(segment_id=segment_pk).values_list("profile_id", flat=True)
    )
    assert members == {first.pk}
    assert outcome.result["size"] == 1
    # And at the first attempt: no run failed (before the fix the first failed and the task
    # was retried after its backoff; five such races in a row lost the run)
    statuses = list(
        SegmentRun.objects.filter(segment_id=segment_pk).values_list("status", flat=True)
    )
    assert statuses == [RunStatus.SUCCEEDED], statuses
