"""Issue #13 item 3: templates see immutable views of variant data, fields and the visitor's
profile. A template cannot change what the next request (another visitor) sees, nor grow it."""

from __future__ import annotations

import pytest

from content.rendering import RenderError, template_compile, template_render
from personalization.snapshot import holder
from profiles import services as profile_services
from tests.factories import make_placement, make_variant

URL = "/api/v1/decide"

MUTATIONS = {
    "list append": "{{ data['items'].append(request.utm.content) }}",
    "list extend (doubling)": "{{ data['items'].extend(data['items']) }}",
    "list insert": "{{ data['items'].insert(0, request.utm.content) }}",
    "list pop": "{{ data['items'].pop() }}",
    "list sort": "{{ data['items'].sort() }}",
    "dict update": "{{ data.nested.update({'k': request.utm.content}) }}",
    "dict setdefault": "{{ data.nested.setdefault('k', request.utm.content) }}",
    "dict clear": "{{ data.nested.clear() }}",
    "profile traits update": "{{ profile.traits.update({'tier': request.utm.content}) }}",
}


@pytest.mark.django_db
@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_decide__template_mutating_shared_values__refused_and_nothing_leaks(client, mutation):
    # Given a variant whose template tries to change the shared data or profile, then prints them
    placement = make_placement("hero")
    make_variant(
        placement,
        "mut",
        priority=1,
        template=mutation + "|{{ data['items']|join(',') }}|{{ data.nested }}|"
        "{{ profile.traits.tier }}",
        data={"items": ["a"], "nested": {"x": 1}},
    )
    profile_services.profile_set_traits(visitor="v1", traits={"tier": "gold"})
    answers = []
    # When two visitors ask in turn, the first with a value of its own in the request
    for visitor, content in (("v1", "secret-of-v1"), ("v2", "v2")):
        answers.append(
            client.get(
                URL, {"placements": "hero", "visitor": visitor, "utm_content": content}
            ).json()["placements"]["hero"]
        )
    # Then the mutation is refused (the default is served), and the variant's data is unchanged
    for answer in answers:
        assert answer["reason"] == "fallback:render_error"
        assert "secret-of-v1" not in str(answer)
    served = holder.get().placements["hero"].by_key["mut"]
    assert served.data == {"items": ["a"], "nested": {"x": 1}}


def test_render__mutating_a_context_list__refused_and_list_unchanged():
    # Given a list shared by every render (as the snapshot's data is)
    shared = {"l": [1, 2, 3]}
    template = template_compile("{{ data.l.extend(data.l) }}{{ data.l|length }}")
    # When rendering a template that would double it, many times
    for _ in range(5):
        with pytest.raises(RenderError):
            template_render(template, {"data": shared}, budget_ms=10_000)
    # Then it never grew
    assert shared == {"l": [1, 2, 3]}


def test_render__template_own_values__still_usable_without_mutation():
    # Templates keep their own tools: namespaces, new lists by concatenation, filters
    source = (
        "{% set ns = namespace(seen=[]) %}{% for x in data.l %}"
        "{% set ns.seen = ns.seen + [x * 2] %}{% endfor %}{{ ns.seen|join(',') }} "
        "{{ data.l|sort|reverse|join(',') }}"
    )
    html = template_render(template_compile(source), {"data": {"l": [1, 3, 2]}}, budget_ms=10_000)
    assert html == "2,6,4 3,2,1"
