"""Tests of the analysis app (model segments' Django side): database, API, admin, worker."""
