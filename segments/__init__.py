"""Profiles, events, consent, segments and the privacy operations (export, erase, retention)."""
