"""Admin forms for content: variant forms generated from a block type's JSON schema."""

from __future__ import annotations

from typing import Any

from django import forms

from core.validators import BoundedJSONField

from .models import BlockType, Placement, Variant
from .rendering import template_check
from .services import block_schema_problems, block_values_problems

BLOCK_PREFIX = "block__"


def schema_form_field(name: str, spec: dict[str, Any], required: bool) -> forms.Field:
    """One Django form field for one property of a block's JSON schema."""
    common = {
        "label": spec.get("title") or name.replace("_", " ").capitalize(),
        "help_text": spec.get("description", ""),
        "required": required,
    }
    kind = spec.get("type", "string")
    if "enum" in spec:
        choices = [(value, value) for value in spec["enum"]]
        return forms.ChoiceField(choices=[("", "---------"), *choices], **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "integer":
        return forms.IntegerField(
            min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common
        )
    if kind == "number":
        return forms.FloatField(
            min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common
        )
    if kind in ("array", "object"):
        return BoundedJSONField(**common)
    if spec.get("format") == "uri":
        return forms.CharField(max_length=spec.get("maxLength"), **common)
    if spec.get("format") in ("html", "textarea"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), **common)
    return forms.CharField(max_length=spec.get("maxLength"), **common)


def checked_template(source: str) -> str:
    """The template source, or a field error naming the line where it does not compile."""
    problem = template_check(source)
    if problem:
        raise forms.ValidationError(f"Template error at {problem}")
    return source


def block_field_names(block_type: BlockType | None) -> list[str]:
    if block_type is None:
        return []
    return [BLOCK_PREFIX + name for name in (block_type.schema or {}).get("properties", {})]


class VariantForm(forms.ModelForm):
    block_type_obj: BlockType | None = None

    class Meta:
        model = Variant
        fields = [
            "placement",
            "key",
            "name",
            "status",
            "priority",
            "condition",
            "locale",
            "starts_at",
            "ends_at",
            "block_type",
            "template",
            "data",
        ]
        field_classes = {"condition": BoundedJSONField, "data": BoundedJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        values = self.instance.block_fields if self.instance.pk else {}
        for name in block_field_names(self.block_type_obj):
            self.fields[name].initial = values.get(name.removeprefix(BLOCK_PREFIX))

    def clean_template(self) -> str:
        return checked_template(self.cleaned_data.get("template", ""))

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "Must be after the start.")
        block_type = cleaned.get("block_type")
        if block_type is not None and block_type == self.block_type_obj:
            self._clean_block_values(block_type, cleaned)
        elif block_type is None and not self._value("template") and not self._value("data"):
            self.add_error(
                "template" if "template" in self.fields else None,
                "Choose a block type, write a template, or give a data payload.",
            )
        return cleaned

    def _value(self, name: str) -> Any:
        """The cleaned value, or the stored one when this form does not edit that field (the
        placement page's inline lists key, name, status… but not the template or data)."""
        if name in self.fields:
            return self.cleaned_data.get(name)
        return getattr(self.instance, name)

    def _clean_block_values(self, block_type: BlockType, cleaned: dict[str, Any]) -> None:
        values = {}
        for name in block_field_names(block_type):
            value = cleaned.get(name)
            if value not in (None, ""):
                values[name.removeprefix(BLOCK_PREFIX)] = value
        for field, message in block_values_problems(block_type=block_type, values=values).items():
            self.add_error(BLOCK_PREFIX + field if field else None, message)
        self.instance.block_fields = values


def variant_form_for(block_type: BlockType | None) -> type[VariantForm]:
    """A VariantForm subclass declaring one field per property of the block's schema."""
    if block_type is None:
        return VariantForm
    schema = block_type.schema or {}
    required = set(schema.get("required", []))
    declared: dict[str, Any] = {
        BLOCK_PREFIX + name: schema_form_field(name, spec, name in required)
        for name, spec in schema.get("properties", {}).items()
    }
    declared["block_type_obj"] = block_type
    return type("VariantBlockForm", (VariantForm,), declared)


class BlockTypeForm(forms.ModelForm):
    class Meta:
        model = BlockType
        fields = ["key", "name", "description", "template", "schema"]
        field_classes = {"schema": BoundedJSONField}

    def clean_template(self) -> str:
        return checked_template(self.cleaned_data.get("template", ""))

    def clean_schema(self):
        schema = self.cleaned_data.get("schema") or {}
        problems = block_schema_problems(schema=schema)
        if problems:
            raise forms.ValidationError(problems)
        return schema


class PlacementForm(forms.ModelForm):
    class Meta:
        model = Placement
        fields = ["key", "name", "description", "default_variant"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("default_variant")
        if field is None:  # read-only (a staff user who may only view placements)
            return
        has_variants = bool(self.instance.pk) and self.instance.variants.exists()
        field.queryset = (
            Variant.objects.filter(placement=self.instance)
            if self.instance.pk
            else Variant.objects.none()
        )
        field.required = has_variants
        field.help_text = "Served when nothing else matches and whenever anything fails. " + (
            "Required: choose one of this placement's variants."
            if has_variants
            else "Add the placement's variants below and save, then choose the default."
        )
