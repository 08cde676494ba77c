"""Sandboxed Jinja2 rendering of variants: compiled once, autoescaped, failures reported.

Templates run in Jinja2's SandboxedEnvironment, so `{{ x.__class__ }}` and friends are refused,
and autoescaping makes every context value (traits, UTM parameters) inert text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(
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


def template_render(template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except Exception as exc:  # any template failure is the caller's fallback, not a 500
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
