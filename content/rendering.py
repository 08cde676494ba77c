"""Sandboxed Jinja2 rendering of variants: compiled once, autoescaped, failures reported.

Templates run in Jinja2's SandboxedEnvironment, so `{{ x.__class__ }}` and friends are refused,
and autoescaping makes every context value (traits, UTM parameters) inert text.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jinja2 import TemplateSyntaxError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

# Every attribute an instance of these exact types has: its type's and its bases' (dir() of a
# type lists them all; the instances have no __dict__ and the types no __getattr__).
_DICT_ATTRIBUTES = frozenset(dir(dict))
_MAPPINGPROXY_ATTRIBUTES = frozenset(dir(MappingProxyType))


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with `x.name` on a plain dict (profile, request) or mappingproxy (data,
    fields) answered as SandboxedEnvironment.getattr answers it, without its detour: there,
    getattr(obj, "name") raises AttributeError for a key that is no attribute of the type, and
    only then is obj["name"] looked up. Here that case is recognised up front (the exact type,
    not a subclass; the name not one of the type's attributes) and goes straight to the item
    lookup, with the same outcome when it fails. Methods, other types and names: unchanged."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            names = _DICT_ATTRIBUTES
        elif kind is MappingProxyType:
            names = _MAPPINGPROXY_ATTRIBUTES
        else:
            return super().getattr(obj, attribute)
        if type(attribute) is str and attribute not in names:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_env = _Sandbox(
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class RenderError(Exception):
    pass


def template_check(source: str) -> TemplateProblem | None:
    """A syntax problem with its line number, or None when the template compiles."""
    try:
        _env.from_string(source)
    except TemplateSyntaxError as exc:
        return TemplateProblem(exc.lineno, exc.message or str(exc))
    return None


def template_compile(source: str):
    return _env.from_string(source or "")


def template_prepare(template) -> None:
    """Compile a lazily compiled template now, if it is one; failures raise RenderError."""
    prepare = getattr(template, "prepare", None)
    if prepare is None:
        return
    try:
        prepare()
    except Exception as exc:  # a template that does not compile is a fallback, not a 500
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc


def template_render(template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except Exception as exc:  # any template failure is the caller's fallback, not a 500
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
