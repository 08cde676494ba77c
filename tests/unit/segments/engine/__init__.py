"""Tests of the pure segment cores (segments.engine): no Django, no database."""
