"""Admin forms for content: variant forms generated from a block type's JSON schema."""

from __future__ import annotations

from typing import Any

from django import forms

from core.forms import PositionedJSONField
from segments.builder import ConditionBuilderWidget

from . import services
from .models import BlockType, Placement, Variant

BLOCK_PREFIX = "block__"


def add_service_errors(form: forms.ModelForm, errors: dict[str, list[str]]) -> None:
    """Put the content services' problems (the rules the API applies too) on the form's fields:
    "block_fields.<name>" on that block field, a field the form does not show as a form-wide
    error naming it. A field the form already refused keeps the form's message alone."""
    for field, messages in errors.items():
        target: str | None = field
        prefix = ""
        if field.startswith("block_fields."):
            target = BLOCK_PREFIX + field.split(".", 1)[1]
        if target not in form.fields:
            prefix = "" if field == "body" else f"{field}: "
            target = None
        shown = form.errors.get(target or forms.forms.NON_FIELD_ERRORS, [])
        if target is not None and shown:
            continue  # the form's own check of this field spoke first (a missing value...)
        for message in messages:
            if prefix + message not in shown:
                form.add_error(target, prefix + message)


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
        return PositionedJSONField(**common)
    if spec.get("format") == "uri":
        return forms.CharField(max_length=spec.get("maxLength"), **common)
    if spec.get("format") in ("html", "textarea"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), **common)
    return forms.CharField(max_length=spec.get("maxLength"), **common)


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
        # The audience builder (pickers, nested groups, words and JSON side by side).
        widgets = {"condition": ConditionBuilderWidget(scope="variant")}
        field_classes = {"condition": PositionedJSONField, "data": PositionedJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        values = self.instance.block_fields if self.instance.pk else {}
        for name in block_field_names(self.block_type_obj):
            self.fields[name].initial = values.get(name.removeprefix(BLOCK_PREFIX))

    def clean(self):
        cleaned = super().clean()
        block_type = cleaned.get("block_type")
        if block_type is not None and block_type == self.block_type_obj:
            values = {}
            for name in block_field_names(block_type):
                value = cleaned.get(name)
                if value not in (None, ""):
                    values[name.removeprefix(BLOCK_PREFIX)] = value
            self.instance.block_fields = values
        return cleaned

    def _post_clean(self) -> None:
        # Every rule of content.services.variant_problems, the API's too (template, schedule,
        # block values against the schema, content, placement), after the model's own checks.
        super()._post_clean()
        errors = services.variant_problems(
            variant=self.instance, exclude=self._get_validation_exclusions()
        )
        block_type = self.cleaned_data.get("block_type")
        if block_type is not None and block_type != self.block_type_obj:
            # A newly chosen block type: its fields appear once saved (editor's flow), so its
            # values are not checked yet.
            errors = {k: v for k, v in errors.items() if not k.startswith("block_fields")}
        add_service_errors(self, errors)


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
        field_classes = {"schema": PositionedJSONField}

    def _post_clean(self) -> None:
        super()._post_clean()
        add_service_errors(
            self,
            services.block_type_problems(
                block_type=self.instance, exclude=self._get_validation_exclusions()
            ),
        )


class PlacementForm(forms.ModelForm):
    class Meta:
        model = Placement
        fields = ["key", "name", "description", "default_variant"]

    def _post_clean(self) -> None:
        super()._post_clean()
        add_service_errors(
            self,
            services.placement_problems(
                placement=self.instance, exclude=self._get_validation_exclusions()
            ),
        )

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
