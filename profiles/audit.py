"""The audit log's one writer."""

from __future__ import annotations

from .models import AuditEntry


def audit_record(
    *, action: str, actor: str, subject: str = AuditEntry.REDACTED, details: dict | None = None
) -> AuditEntry:
    """Append one audit entry. `details` must hold counts and choices, never personal data."""
    return AuditEntry.objects.create(
        action=action, actor=actor or "api", subject=subject, details=details or {}
    )
