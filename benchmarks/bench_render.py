"""Benchmark: the cost of the hard render budget on ordinary variant templates.

Run ``.venv/bin/python benchmarks/bench_render.py [--rounds N]``. Renders the same templates with
the same context in Mosaic's budgeted sandbox (content.rendering: loop and macro checks, output
counting, intercepted operators, guarded filters and calls) and in Jinja2's plain
ImmutableSandboxedEnvironment with the same options; prints the median time per render of each
and the overhead in µs. Importable: ``run()`` returns the rows without printing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path
from types import MappingProxyType

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jinja2 import select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from content.rendering import template_compile, template_render

TEMPLATES = {
    "hero (3 outputs)": '<section class="hero"><h1>{{ fields.title }}</h1>'
    '<a href="{{ fields.url }}">{{ fields.cta|upper }}</a></section>',
    "list (loop of 12, filters)": "<ul>{% for item in data["
    "'items'] %}<li class=\"{{ loop.cycle('odd', 'even') }}\">{{ item.name|title }} — "
    "{{ '%.2f'|format(item.price) }}</li>{% endfor %}</ul>",
    "personal (conditions, macro)": "{% macro badge(t) %}<b>{{ t }}</b>{% endmacro %}"
    "{% if profile.traits.tier == 'gold' %}{{ badge('Gold') }} Hi {{ profile.traits.name "
    "~ '!' }}{% else %}Welcome{% endif %} {{ request.utm.campaign|default('none') }} "
    "{{ (data.discount * 100)|round|int }}%",
}
CONTEXT = {
    "request": {"utm": {"campaign": "spring"}, "device": "mobile"},
    "profile": {"traits": {"tier": "gold", "name": "Ann"}},
    "data": MappingProxyType(
        {
            "items": [{"name": f"item {i}", "price": 9.5 + i} for i in range(12)],
            "discount": 0.15,
        }
    ),
    "fields": MappingProxyType({"title": "Spring sale", "url": "/sale", "cta": "shop now"}),
}


def run(rounds: int = 7, number: int = 2000) -> list[tuple[str, float, float]]:
    plain = ImmutableSandboxedEnvironment(
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rows = []
    for name, source in TEMPLATES.items():
        budgeted = template_compile(source)
        reference = plain.from_string(source)
        assert template_render(budgeted, CONTEXT, budget_ms=60_000) == reference.render(CONTEXT)
        ours, theirs = [], []

        def budgeted_render(budgeted=budgeted):
            return template_render(budgeted, CONTEXT, budget_ms=60_000)

        def plain_render(reference=reference):
            return reference.render(CONTEXT)

        for _ in range(rounds):
            ours.append(timeit.timeit(budgeted_render, number=number))
            theirs.append(timeit.timeit(plain_render, number=number))
        rows.append(
            (
                name,
                statistics.median(ours) / number * 1e6,
                statistics.median(theirs) / number * 1e6,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000, help="renders per round")
    args = parser.parse_args()
    print(f"{'template':32} {'budgeted µs':>12} {'plain µs':>10} {'overhead µs':>12}")
    for name, ours, theirs in run(args.rounds, args.number):
        print(f"{name:32} {ours:12.1f} {theirs:10.1f} {ours - theirs:12.1f}")


if __name__ == "__main__":
    main()
