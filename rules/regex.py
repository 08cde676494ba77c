"""The regular-expression policy: every ``$regex``/``$regexi`` runs on RE2, in linear time.

RE2 (the ``google-re2`` wheel) has no backtracking, so no pattern/input pair can stall a decision
(``^(a+)+$`` against ``"a" * 5000 + "!"`` answers in microseconds). Patterns RE2 rejects -
lookarounds, backreferences - are the ones that need backtracking; they are rejected outright: by
``validate_condition`` with a message saying why, and by the evaluator, which compiles a condition
holding one into a function that never matches. There is deliberately no fallback to ``re``.

JavaScript's ``\\uXXXX`` escape is translated to RE2's ``\\x{XXXX}``; other JavaScript syntax that
GrowthBook users write (``\\d``, ``(?<name>...)``, ``\\/``) is native to RE2. Matching is a search
(unanchored), like JavaScript's ``RegExp.prototype.test``; ``$`` only matches at the very end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import re2

#: Longer patterns are refused: nobody targets visitors with a 1 KiB regex, and it bounds the
#: compile cost of a condition nobody validated.
MAX_PATTERN_LENGTH = 1024

_JS_UNICODE_ESCAPE = re.compile(r"\\(\\)|\\u([0-9A-Fa-f]{4})")


class PatternError(ValueError):
    """A pattern the policy refuses; the message is plain English for an admin."""


def _translate(pattern: str) -> str:
    # Keep "\\\\" pairs intact so "\\\\u0041" stays a literal backslash followed by "u0041".
    return _JS_UNICODE_ESCAPE.sub(
        lambda m: "\\\\" if m.group(1) else "\\x{" + m.group(2) + "}", pattern
    )


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise write every rejected pattern to stderr
    options.never_capture = True  # only "does it match?" is asked
    options.case_sensitive = not ignore_case
    return options


def check_pattern(pattern: object, ignore_case: bool = False) -> str:
    """Return the RE2 form of ``pattern`` or raise :class:`PatternError` explaining the refusal."""
    if not isinstance(pattern, str):
        raise PatternError("must be a regular expression written as a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"is {len(pattern)} characters long; patterns are limited to {MAX_PATTERN_LENGTH}"
        )
    translated = _translate(pattern)
    try:
        re2.compile(translated, _options(ignore_case))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            raise PatternError(f"is not a valid regular expression ({reason})") from None
        raise PatternError(
            f"uses a feature that needs backtracking, such as a lookaround or a backreference "
            f"({reason}); such patterns can take exponential time and are not allowed"
        ) from None
    return translated


# A pattern with no metacharacter, optionally anchored: a substring/prefix/suffix test suffices.
_LITERAL = re.compile(r"(\^?)([^.^$*+?()\[\]{}|\\]*)(\$?)\Z")


def _literal_test(pattern: str) -> Callable[[str], bool] | None:
    """A plain-string equivalent of an ASCII literal pattern (``^`` and ``$`` anchors allowed)."""
    m = _LITERAL.match(pattern)
    if m is None or not pattern.isascii():
        return None
    start, literal, end = m.groups()
    if start and end:
        return lambda text: text == literal
    if start:
        return lambda text: text.startswith(literal)
    if end:
        return lambda text: text.endswith(literal)
    return lambda text: literal in text


@lru_cache(maxsize=1024)
def compile_matcher(pattern: str, ignore_case: bool = False) -> Callable[[str], bool]:
    """A predicate ``text -> bool`` running in time linear in ``len(text)``.

    Raises :class:`PatternError` for refused patterns. Literal patterns (``"^de"``, ``"Mobile"``)
    become ``str`` method calls, about ten times cheaper than a trip into RE2. Otherwise an RE2 set
    with one member answers match/no-match, about a fifth of the cost of ``re2.compile().search``.
    """
    translated = check_pattern(pattern, ignore_case)
    regex_set = re2.Set.SearchSet(_options(ignore_case))
    regex_set.Add(translated)
    regex_set.Compile()
    set_match = regex_set.Match

    def re2_match(text: str) -> bool:
        return set_match(text) is not None

    literal = _literal_test(pattern)
    if literal is None:
        return re2_match
    if not ignore_case:
        return literal
    folded_literal = _literal_test(pattern.lower())
    if folded_literal is None:
        return re2_match

    def folded_match(text: str) -> bool:
        # RE2 folds some non-ASCII letters to ASCII ones (the Kelvin sign to "k"), which
        # str.lower() does not, so only ASCII text takes the shortcut.
        return folded_literal(text.lower()) if text.isascii() else re2_match(text)

    return folded_match
