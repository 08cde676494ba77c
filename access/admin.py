"""Admin for API keys: create (full key shown once), list, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from . import selectors, services
from .keys import key_generate
from .models import ApiKey


class ApiKeyForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Publishable keys: one origin per line, e.g. https://shop.example",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "kind", "role", "allowed_origins", "rate_limit_per_minute"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins or [])

    def clean_allowed_origins(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["allowed_origins"].splitlines()]
        try:
            return services.api_key_clean_origins(origins=[line for line in lines if line])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "kind", "role", "is_active", "last_used_at", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "is_active", "revoked_at", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # The kind decides what a key may do: changing it would silently widen an issued key.
        return [*self.readonly_fields, "kind"] if obj else self.readonly_fields

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        raw = None
        if not change:
            raw = key_generate(obj.kind)
            services.api_key_set_secret(api_key=obj, raw=raw)
        super().save_model(request, obj, form, change)
        selectors.caches_clear()
        actor = request.user.get_username()
        services.api_key_audit(api_key=obj, change="updated" if change else "created", actor=actor)
        if raw is not None:
            self.message_user(
                request,
                f"API key created. Copy it now, it will not be shown again: {raw}",
                level=messages.WARNING,
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoke instead: a deleted key leaves no trace of who could call the API.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset) -> None:
        count = 0
        for api_key in queryset.filter(is_active=True):
            services.api_key_revoke(api_key=api_key, actor=request.user.get_username())
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", level=messages.SUCCESS)
