"""core.models.TimestampedModel: the shared created/updated columns."""

import pytest

from content.models import BlockType, Placement
from core.models import TimestampedModel
from experiments.models import Experiment
from segments.models import Segment


@pytest.mark.parametrize("model", [Segment, BlockType, Placement, Experiment])
def test_timestamped_model__adopted__fields_come_from_the_base(model):
    # Then the models declare no timestamp of their own: one definition for all
    assert issubclass(model, TimestampedModel)
    for name in ("created_at", "updated_at"):
        assert model._meta.get_field(name).model is model  # inherited into the concrete table


@pytest.mark.django_db
def test_timestamped_model__saved_again__updated_moves_created_stays():
    # Given a segment just created
    segment = Segment.objects.create(key="vip", name="VIP", condition={"profile.traits.vip": True})
    created, updated = segment.created_at, segment.updated_at
    assert created is not None
    # When it is saved again
    segment.name = "Very important"
    segment.save()
    segment.refresh_from_db()
    # Then only updated_at moved
    assert segment.created_at == created
    assert segment.updated_at > updated
