"""The sandbox's `x.name` lookup (content.rendering._Sandbox.getattr) answers exactly as
Jinja2's ImmutableSandboxedEnvironment.getattr does, for the plain dicts and mappingproxies it
takes a shortcut on and for everything else."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest
from jinja2 import Undefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from content.rendering import RenderError, _env, template_compile, template_render

_reference = ImmutableSandboxedEnvironment(
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Dict(dict):
    name = "attribute"


class _BadKey(str):
    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        raise TypeError("no comparing")


OBJECTS = [
    {"name": "Ann", "items": "shadowed?", "traits": {"tier": "gold"}},
    {},
    MappingProxyType({"headline": "Hi", "keys": 1}),
    MappingProxyType({}),
    _Dict(name="item"),
    {_BadKey("name"): 1},
    ["a"],
    "text",
    None,
    42,
]
NAMES = ["name", "traits", "headline", "missing", "items", "keys", "get", "update", "copy",
         "__class__", "__dict__", "__init__", "mro", "format", "append", 0, None]  # fmt: skip


def _outcome(environment, obj, name):
    try:
        value = environment.getattr(obj, name)
    except Exception as exc:  # the kind of failure is part of the outcome
        return ("raised", type(exc))
    if isinstance(value, Undefined):
        return ("undefined", type(value), value._undefined_hint, value._undefined_name,
                value._undefined_obj is obj)  # fmt: skip
    if callable(value):
        return (
            "callable",
            getattr(value, "__name__", None),
            getattr(value, "__self__", None) is obj,
        )
    return ("value", value)


@pytest.mark.parametrize("obj", OBJECTS, ids=repr)
@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_sandbox_getattr__same_outcome_as_jinja(obj, name):
    assert _outcome(_env, obj, name) == _outcome(_reference, obj, name)


@pytest.mark.parametrize(
    "source",
    [
        "{{ profile.traits.name }} {{ data.headline }} {{ fields.title }}",
        "{{ profile.missing.deeper }}",
        "{{ profile.items() | list }}",
        "{{ profile.__class__ }}",
        "{{ data.keys() | list }} {{ data.get('headline') }}",
        "{{ request.utm.source | default('none') }}",
        "{% set x = profile.traits %}{{ x.tier }}",
    ],
)
def test_render__same_html_as_jinja_sandbox(source):
    context = {
        "profile": {"traits": {"name": "<Ann>", "tier": "gold"}},
        "request": {"utm": {}},
        "data": MappingProxyType({"headline": "Hi & bye"}),
        "fields": MappingProxyType({"title": "T"}),
    }
    try:
        expected = _reference.from_string(source).render(context)
    except Exception as exc:  # e.g. an attribute of an undefined value: the same error here
        with pytest.raises(RenderError, match=re.escape(f"{type(exc).__name__}: {exc}")):
            template_render(template_compile(source), context)
    else:
        assert template_render(template_compile(source), context) == expected


def test_render__unsafe_attribute__still_refused():
    template = template_compile("{{ profile.__class__.__subclasses__() }}")
    with pytest.raises(RenderError, match=r"SecurityError|unsafe"):
        template_render(template, {"profile": {}})
