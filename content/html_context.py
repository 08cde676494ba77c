"""Where in the HTML each `{{ ... }}` of a template lands, and what makes a value safe there.

Autoescaping makes a value inert in text and in quoted attribute values, but not everywhere: in
a URL attribute `javascript:...` survives escaping, in an unquoted attribute a space starts a
new attribute (`onfocus=...`), in an event-handler attribute or a <script> the browser decodes
the entities and runs the value as code. `expression_contexts` scans a template's literal HTML
in source order (Jinja2's lexer; control blocks are read straight through) and says, for each
expression in order, which context it is in. The renderer then wraps each expression with the
matching treatment, and `template_check` refuses at save the contexts no value is safe in.

Pure: no Django.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from markupsafe import Markup

# Attributes whose value the browser treats as a URL (navigations, loads, form targets).
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "poster",
        "cite",
        "background",
        "codebase",
        "srcset",
        "ping",
        "longdesc",
        "lowsrc",
        "dynsrc",
        "manifest",
        "icon",
        "usemap",
        "archive",
        "classid",
    }
)
# Attributes whose value the browser runs or parses as markup: no interpolated value is safe.
CODE_ATTRIBUTES = frozenset({"srcdoc"})
RAW_TEXT_ELEMENTS = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes"})
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
BLOCKED_URL = "#blocked-url"

TEXT = "text"  # element content, a comment, a quoted ordinary attribute value: escaping suffices
URL = "url"  # a quoted URL attribute value: escaped, and its scheme checked
UNQUOTED = "unquoted"  # an unquoted attribute value: refused at save; every non-alnum encoded
CODE = "code"  # <script>/<style> content, on* and srcdoc attributes: refused; blanked
MARKUP = "markup"  # a tag or attribute name position: refused; reduced to name characters

REFUSED = {
    UNQUOTED: 'an unquoted attribute value (write attr="{{ ... }}")',
    CODE: "a script, style, event-handler (on...) or srcdoc context",
    MARKUP: "a tag or attribute name position",
}


@dataclass(frozen=True, slots=True)
class ExprContext:
    context: str
    line: int
    attribute: str = ""
    # URL: the attribute's literal text before the expression; None when another expression
    # came before it in the same value (the URL's start is then not known statically)
    prefix: str | None = ""


class _Scanner:
    """A small HTML tokenizer state machine fed literal text; asked for the context between."""

    def __init__(self) -> None:
        self.state = "text"
        self.tag = ""
        self.attr = ""
        self.quote = ""
        self.value = ""  # literal text of the current attribute value so far
        self.value_dynamic = False  # an expression already in the current value
        self.raw_end = ""  # "</script" while inside a raw-text element

    def feed(self, text: str) -> None:
        i = 0
        n = len(text)
        while i < n:
            c = text[i]
            s = self.state
            if s == "text":
                if c == "<":
                    if text.startswith("<!--", i):
                        self.state = "comment"
                        i += 4
                        continue
                    if i + 1 < n and (text[i + 1].isalpha() or text[i + 1] == "/"):
                        self.state = "tag_name"
                        self.tag = ""
                    elif i + 1 == n:
                        self.state = "tag_open"
            elif s == "tag_open":
                self.state = "tag_name" if (c.isalpha() or c == "/") else "text"
                self.tag = ""
                continue
            elif s == "comment":
                if text.startswith("-->", i):
                    self.state = "text"
                    i += 3
                    continue
            elif s == "raw":
                if text[i : i + len(self.raw_end)].lower() == self.raw_end:
                    self.state = "tag_name"
                    self.tag = "/"
                    i += 2
                    continue
            elif s == "tag_name":
                if c.isspace():
                    self.state = "in_tag"
                elif c == ">":
                    self._close_tag()
                else:
                    self.tag += c.lower()
            elif s == "in_tag":
                if c == ">":
                    self._close_tag()
                elif not c.isspace() and c != "/":
                    self.state = "attr_name"
                    self.attr = c.lower()
            elif s == "attr_name":
                if c == "=":
                    self.state = "before_value"
                elif c.isspace():
                    self.state = "after_attr"
                elif c == ">":
                    self._close_tag()
                else:
                    self.attr += c.lower()
            elif s == "after_attr":
                if c == "=":
                    self.state = "before_value"
                elif c == ">":
                    self._close_tag()
                elif not c.isspace():
                    self.state = "attr_name"
                    self.attr = c.lower()
            elif s == "before_value":
                if c in "\"'":
                    self.state = "value"
                    self.quote = c
                    self.value = ""
                    self.value_dynamic = False
                elif c == ">":
                    self._close_tag()
                elif not c.isspace():
                    self.state = "value_unquoted"
                    self.value = c
            elif s == "value":
                if c == self.quote:
                    self.state = "in_tag"
                else:
                    self.value += c
            elif s == "value_unquoted":
                if c.isspace():
                    self.state = "in_tag"
                elif c == ">":
                    self._close_tag()
                else:
                    self.value += c
            i += 1

    def _close_tag(self) -> None:
        name = self.tag
        if name in RAW_TEXT_ELEMENTS:
            self.state = "raw"
            self.raw_end = "</" + name
        else:
            self.state = "text"

    def context(self, line: int) -> ExprContext:
        s = self.state
        if s in ("text", "comment"):
            return ExprContext(TEXT, line)
        if s == "raw":
            return ExprContext(CODE, line)
        if s in ("tag_open", "tag_name", "in_tag", "attr_name", "after_attr"):
            return ExprContext(MARKUP, line)
        attr = self.attr
        if s in ("before_value", "value_unquoted"):
            self.state = "value_unquoted"
            return ExprContext(UNQUOTED, line, attr)
        # a quoted value
        if attr.startswith("on") or attr in CODE_ATTRIBUTES:
            found = ExprContext(CODE, line, attr)
        elif attr in URL_ATTRIBUTES:
            found = ExprContext(URL, line, attr, None if self.value_dynamic else self.value)
        else:
            found = ExprContext(TEXT, line, attr)
        self.value_dynamic = True
        return found


def expression_contexts(tokens) -> list[ExprContext]:
    """The HTML context of each `{{ ... }}`, in source order, from Jinja2 lexer tokens
    (lineno, type, value)."""
    scanner = _Scanner()
    found: list[ExprContext] = []
    for lineno, kind, value in tokens:
        if kind == "data":
            scanner.feed(value)
        elif kind == "variable_begin":
            found.append(scanner.context(lineno))
    return found


_STRIPPED = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")


def url_is_safe(url: str) -> bool:
    """Whether a URL's scheme (as a browser reads it: tabs and newlines removed, leading
    control characters and spaces stripped) is http, https or mailto, or it has none (relative)."""
    cleaned = _STRIPPED.sub("", url).lstrip("".join(chr(i) for i in range(33)))
    match = _SCHEME.match(cleaned)
    if match is None:
        return True
    return match.group(1).lower() in SAFE_SCHEMES


def prefix_fixes_scheme(prefix: str) -> bool:
    """Whether the literal start of a URL attribute already decides its scheme (it has a ':',
    or a '/', '?' or '#' that makes it relative), so no value after it can change it."""
    return any(char in prefix for char in ":/?#")


def safe_url_value(value: object, prefix: str | None) -> str:
    """The value to put in a URL attribute after `prefix` (its literal start), or BLOCKED_URL
    when together they would make a URL with another scheme (javascript:, data:, ...). A value
    already marked safe (macro output) is checked as the browser will decode it."""
    text = str(value)
    if hasattr(value, "__html__"):
        text = html.unescape(text)
    if prefix is None:
        return BLOCKED_URL if ":" in text else str(value)
    if prefix_fixes_scheme(prefix):
        return str(value)
    return str(value) if url_is_safe(prefix + text) else BLOCKED_URL


_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def unquoted_value(value: object) -> Markup:
    """Every character but ASCII letters and digits as a numeric character reference: nothing
    can end an unquoted attribute value."""
    return Markup(_NOT_ALNUM.sub(lambda m: f"&#x{ord(m.group()):x};", str(value)))


_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")


def name_value(value: object) -> Markup:
    """Only the characters of a tag or attribute name: a value cannot add markup there."""
    return Markup(_NOT_NAME.sub("", str(value)))
