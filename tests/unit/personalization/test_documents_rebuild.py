"""Issue #13 item 15: when Redis restarts without its data, the profile documents decide reads
are rebuilt from the database (bounded runs of a beat task), so visitors are personalized again."""

from __future__ import annotations

import pytest

from core.pseudonym import pseudonymize
from personalization.visitors import visitor_load
from profiles import services as profile_services
from profiles import tasks as profile_tasks
from profiles.selectors import profile_cache_key


@pytest.mark.django_db
def test_documents__redis_lost_its_data__rebuilt_and_visitors_found_again(redis_client, settings):
    # Given visitors with traits (their documents written), and the mark of a complete set
    for i in range(5):
        profile_services.profile_set_traits(visitor=f"v{i}", traits={"tier": "gold"})
    profile_services.profile_documents_ensure()
    assert profile_services.profile_documents_ensure() == 0  # nothing missing: nothing done
    # When Redis loses everything (a restart without persistence)
    redis_client.flushdb()
    from personalization import profile_cache

    profile_cache.reset()
    assert visitor_load(visitor_id="v3")[1] == "new"
    # Then the beat task, in bounded chunks, writes every document again
    assert profile_services.profile_documents_ensure(chunk_size=2, max_chunks=2) == 4
    assert profile_tasks.profile_documents_ensure() == 1
    assert profile_tasks.profile_documents_ensure() == 0
    for i in range(5):
        assert redis_client.exists(profile_cache_key(pseudonymize(f"v{i}")))
    profile_cache.reset()
    visitor, status = visitor_load(visitor_id="v3")
    assert status == "found"
    assert visitor.profile["traits"] == {"tier": "gold"}


def test_beat__schedules_the_rebuild(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["profile-documents-ensure"]
    assert entry["task"] == "segments.tasks.profile_documents_ensure"
