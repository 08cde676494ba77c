"""Form fields shared by the admin pages: JSON whose errors say where the text is broken."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from core.parsers import lone_surrogate_path
from core.validators import MAX_JSON_DEPTH, json_text_depth


class PositionedJSONField(forms.JSONField):
    """forms.JSONField whose "not JSON" error gives the line and column of the problem
    ("Invalid JSON at line 3, column 14: Expecting ',' delimiter.") instead of "Enter a valid
    JSON." without a position."""

    def to_python(self, value):
        # Refused before parsing: JSON nested deeper than any condition or payload needs would
        # exhaust the recursion of what reads it later (validation, compiling, saving).
        if isinstance(value, str) and json_text_depth(value) > MAX_JSON_DEPTH:
            raise ValidationError(
                "Nested more than %(limit)s levels deep.",
                code="too_deep",
                params={"limit": MAX_JSON_DEPTH},
            )
        if (
            self.disabled
            or value in self.empty_values
            or isinstance(value, list | dict | int | float | forms.fields.JSONString)
        ):
            return super().to_python(value)
        try:
            parsed = json.loads(value, cls=self.decoder)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                "Invalid JSON at line %(line)s, column %(column)s: %(problem)s.",
                code="invalid",
                params={"line": exc.lineno, "column": exc.colno, "problem": exc.msg},
            ) from exc
        except RecursionError as exc:
            raise ValidationError("Invalid JSON: nested too deeply.", code="invalid") from exc
        # json accepts "\\ud800" escapes, which are not Unicode: saving or rendering them fails.
        where = lone_surrogate_path(parsed)
        if where is not None:
            raise ValidationError(
                "Invalid JSON: a lone surrogate escape (not Unicode) in a string at %(where)s.",
                code="invalid",
                params={"where": where},
            )
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str) and json_text_depth(data) > MAX_JSON_DEPTH:
            return forms.fields.InvalidJSONInput(data)  # shown back as typed, with the error
        return super().bound_data(data, initial)


# For ModelAdmin.formfield_overrides: every model JSONField of the page gets positioned errors.
JSON_FORMFIELD_OVERRIDES = {"form_class": PositionedJSONField}
