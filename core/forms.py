"""Form fields shared by the admin pages: JSON whose errors say where the text is broken."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError


class PositionedJSONField(forms.JSONField):
    """forms.JSONField whose "not JSON" error gives the line and column of the problem
    ("Invalid JSON at line 3, column 14: Expecting ',' delimiter.") instead of "Enter a valid
    JSON." without a position."""

    def to_python(self, value):
        if (
            self.disabled
            or value in self.empty_values
            or isinstance(value, list | dict | int | float | forms.fields.JSONString)
        ):
            return super().to_python(value)
        try:
            json.loads(value, cls=self.decoder)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                "Invalid JSON at line %(line)s, column %(column)s: %(problem)s.",
                code="invalid",
                params={"line": exc.lineno, "column": exc.colno, "problem": exc.msg},
            ) from exc
        except RecursionError as exc:
            raise ValidationError("Invalid JSON: nested too deeply.", code="invalid") from exc
        return super().to_python(value)


# For ModelAdmin.formfield_overrides: every model JSONField of the page gets positioned errors.
JSON_FORMFIELD_OVERRIDES = {"form_class": PositionedJSONField}
