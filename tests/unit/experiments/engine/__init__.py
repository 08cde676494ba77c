"""Tests of the pure experiment core (experiments.engine): no Django, no database."""
