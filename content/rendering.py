"""Sandboxed Jinja2 rendering of variants: compiled once, autoescaped, bounded, failures reported.

Templates run in Jinja2's ImmutableSandboxedEnvironment, so `{{ x.__class__ }}` and friends are
refused, the values a template sees cannot be changed by it (`data.items.append(...)` is refused:
the snapshot's data and the process's cached profiles are shared by every request), and
autoescaping makes every context value (traits, UTM parameters) inert text.

Every render runs under a hard budget (`template_render`): wall time, output size, and the total
size of the values it creates. The budget is enforced while the template runs, not after:

- the code generator (`_BudgetedCodeGenerator`) puts a budget check at the top of every loop
  iteration (and into every loop filter) and of every macro and call block body, and routes every
  piece of output through `_BudgetedSandbox.mosaic_out`, which counts it;
- `*`, `**`, `+`, `//` and `%` are intercepted (`call_binop`): their operands' sizes are checked
  before Python computes anything (interception also stops Jinja folding them at compile time,
  so `{{ 9**(9**7) }}` is no longer computed while compiling);
- every call (`call`: methods, macros, globals) and every filter checks the clock, refuses
  arguments that would make a huge result (`'x'.ljust(10**9)`, `|center(10**9)`,
  `|replace('a', big)`, `|join` of a huge product) and checks the size of what it returns;
- `~` concatenations are size-checked too.

Past any limit `RenderOverBudget` is raised from inside the template, so the render stops there.
What can be known without rendering (too deep nesting, a constant expression over a limit,
nested loops over constant ranges whose product is too large) is refused at save by
`template_check`, with the line.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from time import perf_counter as _clock
from types import BuiltinMethodType, MappingProxyType
from typing import Any

from jinja2 import TemplateSyntaxError, nodes, select_autoescape
from jinja2.compiler import CodeGenerator
from jinja2.lexer import (
    TOKEN_BLOCK_BEGIN,
    TOKEN_BLOCK_END,
    TOKEN_LBRACE,
    TOKEN_LBRACKET,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_RBRACE,
    TOKEN_RBRACKET,
    TOKEN_RPAREN,
    TOKEN_WHITESPACE,
)
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment

from . import html_context

# Limits of one render. A value's "weight" approximates the characters of its text form (a
# string's length, a container's elements' weights summed): no single value a template creates
# may weigh more than MAX_VALUE_WEIGHT, all of them together more than MAX_ALLOCATED_WEIGHT,
# the output be longer than MAX_OUTPUT_CHARS, or an integer longer than MAX_INT_BITS.
MAX_VALUE_WEIGHT = 1_000_000
MAX_ALLOCATED_WEIGHT = 20_000_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_INT_BITS = 8_192
DEFAULT_BUDGET_MS = 50.0
# Static limits, checked at save: nesting of brackets and of blocks, iterations of nested loops
# over constant ranges.
MAX_NESTING = 32
MAX_BLOCK_NESTING = 16  # Python itself refuses more than 20 nested loops in one function
MAX_STATIC_ITERATIONS = 1_000_000
MAX_TEMPLATE_CHARS = 100_000

_CONTAINERS = (list, tuple, set, frozenset)


class RenderError(Exception):
    pass


class RenderOverBudget(RenderError):
    """The render ran past one of its limits (time, output, value sizes) and was stopped."""


@dataclass(slots=True)
class _Budget:
    deadline: float
    output: int = 0
    allocated: int = 0


class _Local(threading.local):
    budget: _Budget | None = None


_active = _Local()
_FORMATTER = Formatter()


def _over(why: str) -> RenderOverBudget:
    return RenderOverBudget(why)


def _tick() -> bool:
    budget = _active.budget
    if budget is not None and _clock() > budget.deadline:
        raise _over("the render ran out of time")
    return True


def weight(value: Any, limit: int = MAX_VALUE_WEIGHT) -> int:
    """An upper estimate of the size of `value`'s text form, exact enough to bound memory; stops
    counting once past `limit` (the answer is then just > limit)."""
    kind = type(value)
    if kind is str or isinstance(value, str | bytes | bytearray):
        return len(value)
    if kind is int:
        return 1 + (value.bit_length() * 3 >> 3)
    if isinstance(value, Mapping):
        items: Any = (*value.keys(), *value.values()) if len(value) <= limit else ()
    elif isinstance(value, _CONTAINERS):
        items = value
    else:
        return 1
    total = 1 + len(value)
    if total > limit:
        return total
    for item in items:
        # scalars inline: a call per element would make this the slowest part of a render
        kind = type(item)
        if kind is str:
            total += len(item)
        elif kind is int:
            total += 1 + (item.bit_length() * 3 >> 3)
        elif kind is float or kind is bool or item is None:
            total += 1
        else:
            total += weight(item, limit - total)
        if total > limit:
            return total
    return total


def _checked(value: Any) -> Any:
    """`value`, counted against the render's allocation; over a limit, the render stops."""
    size = len(value) if type(value) is str else weight(value)
    if size > MAX_VALUE_WEIGHT:
        raise _over(f"a value of size {size:,} exceeds the limit of {MAX_VALUE_WEIGHT:,}")
    budget = _active.budget
    if budget is not None:
        budget.allocated += size
        if budget.allocated > MAX_ALLOCATED_WEIGHT:
            raise _over("the render created too much data")
        if _clock() > budget.deadline:
            raise _over("the render ran out of time")
    return value


def _int_bits(value: Any) -> int:
    return value.bit_length() if type(value) is int or isinstance(value, int) else 0


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise _over(why)


def _check_count(value: Any, what: str, limit: int = MAX_VALUE_WEIGHT) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _require(abs(value) <= limit, f"{what} {value} exceeds the limit of {limit:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _check_widths(widths: list[str], fields: int, args: Any) -> None:
    """Widths and precisions (digits, or "*"/"{...}" taken from the arguments) that would make a
    string larger than the limit, over all of a format string's fields."""
    per_field = max(1, MAX_VALUE_WEIGHT // (fields + 1))
    dynamic = False
    for width in widths:
        if width in ("*", "{"):
            dynamic = True
        elif width:
            _require(len(width) <= 7 and int(width) <= per_field, "a format width is too large")
    if dynamic:
        values = args.values() if isinstance(args, Mapping) else args
        if not isinstance(values, tuple | list) and not isinstance(args, Mapping):
            values = (values,)
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool):
                _require(abs(value) <= per_field, "a format width argument is too large")


def _check_format_string(fmt: str, args: Any = ()) -> None:
    """A %-format string whose widths or precisions could make a huge string."""
    specs = _PERCENT_SPEC.findall(fmt)
    _check_widths([part for spec in specs for part in spec], len(specs), args)


def _check_brace_format(fmt: str, args: Any = ()) -> None:
    """The same for a str.format string."""
    try:
        fields = [spec for _, _, spec, _ in _FORMATTER.parse(fmt) if spec]
    except ValueError:
        return  # it fails anyway, without building anything
    widths = [
        "{" if "{" in spec else digits
        for spec in fields
        for digits in _DIGITS.findall(spec) or [""]
    ]
    _check_widths(widths, len(fields), args)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    numbers = (int, float)
    if operator == "*":
        if (
            isinstance(left, int)
            and not isinstance(left, bool | float)
            and not isinstance(right, numbers)
        ):
            left, right = right, left
        if isinstance(right, int) and not isinstance(left, numbers):
            # a sequence repeated: its size times the count
            if right > 0 and hasattr(left, "__len__"):
                size = weight(left)
                _require(
                    size * right <= MAX_VALUE_WEIGHT,
                    f"a repetition of size {size:,} x {right:,} exceeds the limit",
                )
            return
        _require(
            _int_bits(left) + _int_bits(right) <= MAX_INT_BITS, "an integer product is too large"
        )
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _require(
                right <= MAX_INT_BITS and _int_bits(left) * right <= MAX_INT_BITS,
                "a power is too large",
            )
    elif operator == "+":
        if isinstance(left, int) and isinstance(right, int):
            return
        if hasattr(left, "__len__") and hasattr(right, "__len__"):
            _require(
                weight(left) + weight(right) <= MAX_VALUE_WEIGHT, "a concatenation is too large"
            )
    elif operator == "%" and isinstance(left, str):
        _check_format_string(left, right)


# --- filters and methods whose result can be far larger than their inputs ----------------------


def _est_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(s, str) and isinstance(new, str) and isinstance(old, str):
        occurrences = (len(s) + 1) if not old else s.count(old)
        if isinstance(count, int) and count >= 0:
            occurrences = min(occurrences, count)
        _require(len(s) + occurrences * len(new) <= MAX_VALUE_WEIGHT, "a replacement is too large")


def _est_join(iterable: Any, separator: Any) -> None:
    if hasattr(iterable, "__len__"):
        _require(
            weight(iterable) + len(iterable) * len(str(separator)) <= MAX_VALUE_WEIGHT,
            "a join is too large",
        )


def _est_indent(s: Any, width: Any) -> None:
    if isinstance(s, str):
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _check_count(pad, "an indentation width")
        _require(
            len(s) + (s.count("\n") + 1) * max(pad, 0) <= MAX_VALUE_WEIGHT,
            "an indentation is too large",
        )


def _est_expandtabs(s: str, tabsize: Any = 8) -> None:
    _check_count(tabsize, "a tab size")
    if isinstance(tabsize, int):
        _require(len(s) + s.count("\t") * max(tabsize, 0) <= MAX_VALUE_WEIGHT, "tabs too wide")


# filter name -> pre-check called with the filter's own arguments (so with the same signature,
# its pass_arg first where it has one)
def _f_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _check_count(width, "a width")


def _f_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    _est_indent(s, width)


def _f_batch(value: Any, linecount: Any = 1, *_: Any, **__: Any) -> None:
    _check_count(linecount, "a batch size")


def _f_slice(eval_ctx: Any, value: Any, slices: Any = 1, *_: Any, **__: Any) -> None:
    _check_count(slices, "a number of slices")


def _f_wordwrap(env: Any, s: Any, width: Any = 79, *_: Any, **__: Any) -> None:
    _check_count(width, "a width")


def _f_truncate(env: Any, s: Any, length: Any = 255, *_: Any, **__: Any) -> None:
    _check_count(length, "a length")


def _f_join(eval_ctx: Any, value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    _est_join(value, d)


def _f_replace(
    eval_ctx: Any, s: Any, old: Any = "", new: Any = "", count: Any = None, **__: Any
) -> None:
    _est_replace(s, old, new, count)


def _f_format(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        _check_format_string(value, (*args, *kwargs.values()))


def _f_urlize(eval_ctx: Any, value: Any, trim_url_limit: Any = None, *_: Any, **__: Any) -> None:
    _check_count(trim_url_limit, "a limit")


_FILTER_CHECKS = {
    "center": _f_center,
    "indent": _f_indent,
    "batch": _f_batch,
    "slice": _f_slice,
    "wordwrap": _f_wordwrap,
    "truncate": _f_truncate,
    "join": _f_join,
    "replace": _f_replace,
    "format": _f_format,
    "urlize": _f_urlize,
}


def _bounded_list(iterable: Any) -> list[Any]:
    """An iterable without a length (a generator: `|map`, `|select`) as a list, refused past
    MAX_VALUE_WEIGHT items, so that what is built from it can be checked before it is built."""
    items = list(itertools.islice(iterable, MAX_VALUE_WEIGHT + 1))
    _require(len(items) <= MAX_VALUE_WEIGHT, "a sequence is too long")
    return items


def _f_sum(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    # Adding lists or strings copies the running total at every item: quadratic, and one C
    # call the clock cannot interrupt.
    if not isinstance(start, int | float) and hasattr(iterable, "__len__"):
        _require(
            len(iterable) * weight(iterable) <= MAX_ALLOCATED_WEIGHT,
            "a sum of sequences is too large",
        )


_FILTER_CHECKS["sum"] = _f_sum


def _guarded_filter(name: str, func: Any) -> Any:
    check = _FILTER_CHECKS.get(name)

    if name == "join":

        @functools.wraps(func)
        def guarded_join(eval_ctx: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
            _tick()
            if not hasattr(value, "__len__"):
                value = _bounded_list(value)
            _f_join(eval_ctx, value, *args, **kwargs)
            return _checked(func(eval_ctx, value, *args, **kwargs))

        return guarded_join

    if check is None:

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _tick()
            return _checked(func(*args, **kwargs))

    else:

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _tick()
            check(*args, **kwargs)
            return _checked(func(*args, **kwargs))

    return guarded


# str methods -> pre-check taking (the string, args, kwargs)
def _method_width(s: str, args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        _check_count(value, "a width")


_STR_METHOD_CHECKS = {
    "center": _method_width,
    "ljust": _method_width,
    "rjust": _method_width,
    "zfill": _method_width,
    "expandtabs": lambda s, args, kwargs: _est_expandtabs(s, *args, **kwargs),
    "replace": lambda s, args, kwargs: _est_replace(s, *args[:3]),
    "join": lambda s, args, kwargs: _est_join(args[0] if args else (), s),
    "format": lambda s, args, kwargs: _check_brace_format(s, (*args, *kwargs.values())),
    "format_map": lambda s, args, kwargs: _check_brace_format(
        s, tuple(args[0].values()) if args and isinstance(args[0], Mapping) else ()
    ),
}


def _safe_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    from jinja2.utils import generate_lorem_ipsum

    _require(0 <= n <= 100 and 0 <= min <= max <= 1000, "lipsum arguments too large")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


# --- the code generator: budget checks inside loops, macros and output -------------------------


_TICK = "mosaic_tick"


def _tick_expr(lineno: int) -> nodes.Expr:
    """An expression (always true) the code generator writes as a budget check. Jinja2 allows
    no custom node types; an EnvironmentAttribute is one no template can write (extensions
    only), so this one is recognised by its name."""
    return nodes.EnvironmentAttribute(_TICK, lineno=lineno)


class _BudgetedCodeGenerator(CodeGenerator):
    def visit_EnvironmentAttribute(self, node: nodes.EnvironmentAttribute, frame: Any) -> None:
        if node.name == _TICK:
            self.write(f"environment.{_TICK}()")
        else:
            super().visit_EnvironmentAttribute(node, frame)

    def visit_For(self, node: nodes.For, frame: Any) -> None:
        node.body = [nodes.ExprStmt(_tick_expr(node.lineno), lineno=node.lineno), *node.body]
        if node.test is not None:
            node.test = nodes.And(_tick_expr(node.lineno), node.test, lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Macro(self, node: nodes.Macro, frame: Any) -> None:
        node.body = [nodes.ExprStmt(_tick_expr(node.lineno), lineno=node.lineno), *node.body]
        super().visit_Macro(node, frame)

    def visit_CallBlock(self, node: nodes.CallBlock, frame: Any) -> None:
        node.body = [nodes.ExprStmt(_tick_expr(node.lineno), lineno=node.lineno), *node.body]
        super().visit_CallBlock(node, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        # Always escaped, whatever {% autoescape %} says: a value from the request or a profile
        # is never output as markup (a macro's own output is Markup and stays as it is).
        self.write("environment.mosaic_out(escape(")

    def _output_child_post(self, node: nodes.Expr, frame: Any, finalize: Any) -> None:
        self.write("))")

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.mosaic_checked(")
        super().visit_Concat(node, frame)
        self.write(")")


# Every attribute an instance of these exact types has: its type's and its bases' (dir() of a
# type lists them all; the instances have no __dict__ and the types no __getattr__).
_DICT_ATTRIBUTES = frozenset(dir(dict))
_MAPPINGPROXY_ATTRIBUTES = frozenset(dir(MappingProxyType))


_URL_FILTER = "mosaic_url_context"
_UNQUOTED_FILTER = "mosaic_unquoted_context"
_CODE_FILTER = "mosaic_code_context"
_MARKUP_FILTER = "mosaic_markup_context"


def _unsafe_safe(value: Any) -> str:
    return str(value)


def _blank(value: Any) -> str:
    return ""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox (immutable: no template changes a value it is given), with budget checks
    (see the module docstring), and with `x.name` on a plain dict (profile, request) or
    mappingproxy (data, fields) answered as SandboxedEnvironment.getattr answers it, without its
    detour: there, getattr(obj, "name") raises AttributeError for a key that is no attribute of
    the type, and only then is obj["name"] looked up. Here that case is recognised up front (the
    exact type, not a subclass; the name not one of the type's attributes) and goes straight to
    the item lookup, with the same outcome when it fails. Methods, other types and names:
    unchanged."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "//", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _safe_lipsum
        # `|safe` would output a request or profile value as markup: it only keeps the text
        # (escaped like any value); templates using it are refused at save.
        self.filters["safe"] = _unsafe_safe
        self.filters[_URL_FILTER] = html_context.safe_url_value
        self.filters[_UNQUOTED_FILTER] = html_context.unquoted_value
        self.filters[_CODE_FILTER] = _blank
        self.filters[_MARKUP_FILTER] = html_context.name_value

    @staticmethod
    def mosaic_tick() -> bool:
        return _tick()

    @staticmethod
    def mosaic_out(text: Any) -> Any:
        budget = _active.budget
        if budget is not None:
            budget.output += len(text)
            if budget.output > MAX_OUTPUT_CHARS:
                raise _over(f"the output exceeds {MAX_OUTPUT_CHARS:,} characters")
        return text

    @staticmethod
    def mosaic_checked(value: Any) -> Any:
        return _checked(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _checked(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        method = __obj
        if type(method) is not BuiltinMethodType:  # str.format comes wrapped by the sandbox
            method = getattr(method, "__wrapped__", method)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            name = getattr(method, "__name__", "")
            if name == "join" and args and not hasattr(args[0], "__len__"):
                args = (_bounded_list(args[0]), *args[1:])
            check = _STR_METHOD_CHECKS.get(name)
            if check is not None:
                check(owner, args, kwargs)
        return _checked(super().call(__context, __obj, *args, **kwargs))

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


# --- static checks at save ---------------------------------------------------------------------

_OPENERS = {TOKEN_LPAREN, TOKEN_LBRACKET, TOKEN_LBRACE}
_CLOSERS = {TOKEN_RPAREN, TOKEN_RBRACKET, TOKEN_RBRACE}
_BLOCK_OPENERS = {"for", "if", "macro", "call", "filter", "with", "block", "autoescape", "trans"}


def _nesting_problem(source: str) -> TemplateProblem | None:
    """Brackets nested deeper than MAX_NESTING or blocks than MAX_BLOCK_NESTING (Jinja's parser
    and compiler recurse per level, so a few hundred levels exhaust Python's stack). Uses the
    lexer, which does not recurse."""
    brackets = blocks = 0
    after_block_begin = False
    for lineno, token, value in _env.lex(source):
        if token == TOKEN_WHITESPACE:
            continue
        if token in _OPENERS:
            brackets += 1
            if brackets > MAX_NESTING:
                return TemplateProblem(
                    lineno, f"brackets are nested more than {MAX_NESTING} levels deep"
                )
        elif token in _CLOSERS:
            brackets = max(0, brackets - 1)
        elif token == TOKEN_NAME and after_block_begin:
            if value in _BLOCK_OPENERS or (value == "set" and brackets == 0):
                blocks += 1 if value != "set" else 0
            elif value.startswith("end"):
                blocks = max(0, blocks - 1)
            if blocks > MAX_BLOCK_NESTING:
                return TemplateProblem(
                    lineno, f"blocks are nested more than {MAX_BLOCK_NESTING} levels deep"
                )
        elif token == TOKEN_BLOCK_END:
            brackets = 0
        after_block_begin = token == TOKEN_BLOCK_BEGIN
    return None


_NOT_CONSTANT = object()


def _static_value(node: nodes.Node) -> Any:
    """The value of a constant expression, computed with the render's checks (a check that
    fails raises RenderOverBudget), or _NOT_CONSTANT."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        values = [_static_value(item) for item in node.items]
        if any(value is _NOT_CONSTANT for value in values):
            return _NOT_CONSTANT
        return values if isinstance(node, nodes.List) else tuple(values)
    if isinstance(node, nodes.BinExpr):
        left, right = _static_value(node.left), _static_value(node.right)
        if left is _NOT_CONSTANT or right is _NOT_CONSTANT:
            return _NOT_CONSTANT
        try:
            if node.operator in _Sandbox.intercepted_binops:
                return _env.call_binop(None, node.operator, left, right)
            return _env.binop_table[node.operator](left, right)
        except RenderOverBudget:
            raise
        except Exception:
            return _NOT_CONSTANT
    if isinstance(node, nodes.UnaryExpr):
        value = _static_value(node.node)
        if value is _NOT_CONSTANT:
            return _NOT_CONSTANT
        try:
            return _env.unop_table[node.operator](value)
        except Exception:
            return _NOT_CONSTANT
    if isinstance(node, nodes.Concat):
        values = [_static_value(item) for item in node.nodes]
        if any(value is _NOT_CONSTANT for value in values):
            return _NOT_CONSTANT
        return _checked("".join(str(value) for value in values))
    if isinstance(node, nodes.Filter) and node.node is not None and not node.dyn_args:
        value = _static_value(node.node)
        args = [_static_value(arg) for arg in node.args]
        kwargs = {kw.key: _static_value(kw.value) for kw in node.kwargs}
        if value is _NOT_CONSTANT or _NOT_CONSTANT in args or _NOT_CONSTANT in kwargs.values():
            return _NOT_CONSTANT
        func = _env.filters.get(node.name)
        if func is None or getattr(func, "jinja_pass_arg", None) is not None:
            return _NOT_CONSTANT
        try:
            return func(value, *args, **kwargs)
        except RenderOverBudget:
            raise
        except Exception:
            return _NOT_CONSTANT
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name in ("range", "lipsum")
        and not node.kwargs
        and not node.dyn_args
    ):
        args = [_static_value(arg) for arg in node.args]
        if _NOT_CONSTANT in args:
            return _NOT_CONSTANT
        if node.node.name == "lipsum":
            _safe_lipsum(*args)
            return _NOT_CONSTANT
        try:
            return range(*args)
        except Exception:
            return _NOT_CONSTANT
    return _NOT_CONSTANT


def _static_problem(tree: nodes.Template) -> TemplateProblem | None:
    """A constant expression over a limit, or nested loops over constant ranges that would run
    more than MAX_STATIC_ITERATIONS times."""

    def walk(node: nodes.Node, iterations: int) -> TemplateProblem | None:
        if isinstance(node, nodes.Expr) and not isinstance(node, nodes.Name | nodes.Const):
            try:
                value = _static_value(node)
            except RenderOverBudget as exc:
                return TemplateProblem(node.lineno, f"over the render budget: {exc}")
            if value is not _NOT_CONSTANT:
                return None
        if isinstance(node, nodes.For):
            count = _static_value(node.iter) if not node.recursive else _NOT_CONSTANT
            if isinstance(count, range) and len(count) > MAX_RANGE:
                return TemplateProblem(
                    node.lineno,
                    f"range of {len(count):,} items; the limit is {MAX_RANGE:,}",
                )
            length = len(count) if isinstance(count, range | list | tuple | str) else 1
            inner = iterations * max(length, 1)
            if inner > MAX_STATIC_ITERATIONS:
                return TemplateProblem(
                    node.lineno,
                    f"nested loops would run {inner:,} times; the render budget allows far "
                    f"fewer (limit {MAX_STATIC_ITERATIONS:,})",
                )
            for child in node.iter_child_nodes(exclude=("body",)):
                problem = walk(child, iterations)
                if problem:
                    return problem
            for child in node.body:
                problem = walk(child, inner)
                if problem:
                    return problem
            return None
        for child in node.iter_child_nodes():
            problem = walk(child, iterations)
            if problem:
                return problem
        return None

    return walk(tree, 1)


def _expressions(tree: nodes.Template) -> list[tuple[list[nodes.Node], int]]:
    """Every `{{ ... }}` of a template, in source order, as (its Output's node list, index)."""
    return [
        (output.nodes, index)
        for output in tree.find_all(nodes.Output)
        for index, child in enumerate(output.nodes)
        if not isinstance(child, nodes.TemplateData)
    ]


_CONTEXT_FILTERS = {
    html_context.UNQUOTED: _UNQUOTED_FILTER,
    html_context.CODE: _CODE_FILTER,
    html_context.MARKUP: _MARKUP_FILTER,
}


def _contextualised(source: str) -> tuple[nodes.Template, list[html_context.ExprContext]]:
    """The template's tree with each expression wrapped in the treatment its HTML context needs
    (URL scheme check, unquoted-value encoding, blanking in code, name characters only)."""
    tree = _env.parse(source)
    contexts = html_context.expression_contexts(_env.lex(source))
    expressions = _expressions(tree)
    if len(contexts) != len(expressions):  # never seen; escaping alone then, as before
        return tree, []
    for (siblings, index), found in zip(expressions, contexts, strict=True):
        expr = siblings[index]
        if found.context == html_context.URL:
            siblings[index] = nodes.Filter(
                expr, _URL_FILTER, [nodes.Const(found.prefix)], [], None, None, lineno=expr.lineno
            )
        elif found.context in _CONTEXT_FILTERS:
            siblings[index] = nodes.Filter(
                expr, _CONTEXT_FILTERS[found.context], [], [], None, None, lineno=expr.lineno
            )
    return tree, contexts


def _context_problem(tree: nodes.Template, contexts: list) -> TemplateProblem | None:
    for found in contexts:
        if found.context in html_context.REFUSED:
            return TemplateProblem(
                found.line,
                f"a value cannot be put in {html_context.REFUSED[found.context]}: "
                "it could run as code or add attributes",
            )
    for node in tree.find_all(nodes.Filter):
        if node.name == "safe":
            return TemplateProblem(node.lineno, "|safe is not allowed: values are always escaped")
    for node in tree.find_all(nodes.ScopedEvalContextModifier):
        for option in node.options:
            if option.key == "autoescape":
                return TemplateProblem(
                    node.lineno, "{% autoescape %} is not allowed: values are always escaped"
                )
    return None


def template_check(source: str) -> TemplateProblem | None:
    """What is wrong with a template that can be known without rendering it (a syntax error,
    nesting too deep, a constant over the render budget, a value in an HTML context where no
    escaping makes it safe, |safe), with its line; None when it is fine."""
    source = source or ""
    if len(source) > MAX_TEMPLATE_CHARS:
        return TemplateProblem(
            None, f"the template is {len(source):,} characters; the limit is {MAX_TEMPLATE_CHARS:,}"
        )
    try:
        problem = _nesting_problem(source)
        if problem:
            return problem
        tree, contexts = _contextualised(source)
        problem = _context_problem(tree, contexts) or _static_problem(tree)
        if problem:
            return problem
        template_compile(source)
    except TemplateSyntaxError as exc:
        return TemplateProblem(exc.lineno, exc.message or str(exc))
    except RecursionError:
        return TemplateProblem(None, "the template is nested too deeply to compile")
    except Exception as exc:  # compiling must never fail a save with a 500
        return TemplateProblem(None, f"the template does not compile: {type(exc).__name__}")
    return None


def template_compile(source: str):
    """The compiled template, each expression treated for its HTML context."""
    tree, _ = _contextualised(source or "")
    return _env.template_class.from_code(_env, _env.compile(tree), _env.make_globals(None), None)


def template_prepare(template) -> None:
    """Compile a lazily compiled template now, if it is one; failures raise RenderError."""
    prepare = getattr(template, "prepare", None)
    if prepare is None:
        return
    try:
        prepare()
    except Exception as exc:  # a template that does not compile is a fallback, not a 500
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc


def _default_budget_ms() -> float:
    try:
        from django.conf import settings

        return float(getattr(settings, "MOSAIC_RENDER_BUDGET_MS", DEFAULT_BUDGET_MS))
    except Exception:  # settings not configured (a pure use of this module)
        return DEFAULT_BUDGET_MS


def template_render(template, context: dict[str, Any], *, budget_ms: float | None = None) -> str:
    """The rendered template; RenderOverBudget when it ran past its time (`budget_ms`, by default
    MOSAIC_RENDER_BUDGET_MS), output or value-size limits (stopped there), RenderError for any
    other failure."""
    ms = _default_budget_ms() if budget_ms is None else budget_ms
    outer = getattr(_active, "budget", None)
    _active.budget = _Budget(deadline=_clock() + ms / 1000)
    try:
        return template.render(context)
    except RenderOverBudget:
        raise
    except RecursionError as exc:  # recursion is bounded by Python's stack: part of the budget
        raise RenderOverBudget("the template recursed too deeply") from exc
    except Exception as exc:  # any template failure is the caller's fallback, not a 500
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _active.budget = outer


__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_VALUE_WEIGHT",
    "RenderError",
    "RenderOverBudget",
    "TemplateProblem",
    "template_check",
    "template_compile",
    "template_prepare",
    "template_render",
    "weight",
]
