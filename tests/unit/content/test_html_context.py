"""Issue #13 item 5 without a browser: each expression is treated for the HTML context it lands
in; contexts where no escaping is enough are refused at save."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from content.rendering import template_check, template_compile, template_render

URL_PAYLOADS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
]


@pytest.mark.parametrize("payload", URL_PAYLOADS)
@pytest.mark.parametrize("attribute", ["href", "src", "action", "formaction", "xlink:href"])
def test_render__dangerous_url_scheme_in_url_attribute__blocked(payload, attribute):
    source = f'<a {attribute}="{{{{ request.utm.content }}}}">x</a>'
    html = template_render(
        template_compile(source), {"request": {"utm": {"content": payload}}}, budget_ms=10_000
    )
    assert html == f'<a {attribute}="#blocked-url">x</a>'
    assert template_check(source) is None  # a URL from a value is allowed; it is checked


@pytest.mark.parametrize(
    "url", ["https://shop.example/a?b=1", "http://x", "mailto:a@b.c", "/cart", "sale#top", "?q=1"]
)
def test_render__safe_or_relative_url__kept(url):
    html = template_render(template_compile('<a href="{{ u }}">x</a>'), {"u": url}, budget_ms=1e4)
    assert html == f'<a href="{url.replace("&", "&amp;")}">x</a>'


def test_render__url_after_a_literal_that_fixes_the_scheme__escaped_only():
    html = template_render(
        template_compile('<a href="/search?q={{ q }}">x</a>'), {"q": "javascript:1"}, budget_ms=1e4
    )
    assert html == '<a href="/search?q=javascript:1">x</a>'


def test_render__url_scheme_split_over_two_values__blocked():
    html = template_render(
        template_compile('<a href="{{ a }}{{ b }}">x</a>'),
        {"a": "java", "b": "script:alert(1)"},
        budget_ms=1e4,
    )
    assert html == '<a href="java#blocked-url">x</a>'


REFUSED = {
    "unquoted attribute": "<input title={{ v }}>",
    "event handler": "<div onclick=\"go('{{ v }}')\">",
    "script": "<script>var v = '{{ v }}';</script>",
    "style element": "<style>a { color: {{ v }} }</style>",
    "srcdoc": '<iframe srcdoc="{{ v }}"></iframe>',
    "attribute name position": "<div {{ v }}>",
    "tag name": "<{{ v }}>",
    "safe filter": "{{ v|safe }}",
    "autoescape off": "{% autoescape false %}{{ v }}{% endautoescape %}",
}


@pytest.mark.parametrize("source", REFUSED.values(), ids=REFUSED.keys())
def test_template_check__value_where_escaping_is_not_enough__refused(source):
    assert template_check(source) is not None


class _Markup(HTMLParser):
    """The elements, attributes and script text an HTML parser finds."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.script = ""
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        self._in_script = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script += data


@pytest.mark.parametrize("source", REFUSED.values(), ids=REFUSED.keys())
def test_render__refused_context_stored_anyway__value_inert(source):
    # Given a template stored before the check (or by a script): it still cannot be abused
    payload = "x onfocus=alert(1) autofocus ');alert(1);('<script>alert(1)</script>"
    parsed, benign = _Markup(), _Markup()
    template = template_compile(source)
    parsed.feed(template_render(template, {"v": payload}, budget_ms=1e4))
    benign.feed(template_render(template, {"v": "x"}, budget_ms=1e4))
    # Then the payload added no element, no attribute, and nothing to a script
    assert "alert" not in parsed.script
    assert len(parsed.tags) == len(benign.tags)
    assert len(parsed.attributes) == len(benign.attributes)
    assert [n for n in parsed.attributes if n.startswith("on") or n == "autofocus"] == [
        n for n in benign.attributes if n.startswith("on") or n == "autofocus"
    ]
    assert parsed.tags.count("script") == benign.tags.count("script")


ALLOWED = [
    '<a href="{{ u }}" title="{{ t }}" class="c {{ t }}">{{ t }}</a>',
    '<img src="{{ u }}" alt="{{ t }}" style="color: {{ t }}">',
    '<!-- {{ t }} --><p>{% for x in xs %}<span data-x="{{ x }}">{{ x }}</span>{% endfor %}</p>',
    "<textarea>{{ t }}</textarea><title>{{ t }}</title>",
]


@pytest.mark.parametrize("source", ALLOWED)
def test_template_check__values_in_escapable_contexts__accepted(source):
    assert template_check(source) is None
