"""manage.py import_events FILE [--format cdnow|csv] [--batch-size N] [--limit LINES]

Imports transactions as purchase events through segments.services.events_store (the same path
as the API's ingestion), in batches, then runs ingestion's second stage itself: the touched
profiles' aggregates, segments and cached documents.
Idempotent: event ids are derived from the rows, so a re-run stores nothing new.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from identity.importers import READERS, ImportRowError
from ingestion import aggregate as ingestion_aggregate
from ingestion import store as ingestion_store


class Command(BaseCommand):
    help = "Import CSV/CDNOW transactions as purchase events (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=sorted(READERS), default="cdnow")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument(
            "--limit", type=int, default=None, help="Only the first LIMIT lines of the file."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file: Path, format: str, batch_size: int, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        started = time.monotonic()
        rows = READERS[format](file, limit=options["limit"])
        total_rows = stored = 0
        touched: set[int] = set()
        with tqdm(
            unit=" rows", disable=options["no_progress"], file=self.stderr._out, mininterval=0.5
        ) as bar:
            try:
                while batch := list(itertools.islice(rows, batch_size)):
                    result = ingestion_store.events_store(events=batch)
                    total_rows += len(batch)
                    stored += result.stored
                    touched.update(result.profile_ids)
                    bar.update(len(batch))
            except ImportRowError as exc:
                raise CommandError(f"{file}: {exc}; {stored} events stored before it") from exc
        ids = sorted(touched)
        if ingestion_aggregate.profiles_aggregate_all_pending().skipped_locked:
            self.stderr.write("Aggregation is running in a worker; it will finish the rest.")
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Imported {file.name}: {total_rows} rows, {stored} new events, "
            f"{total_rows - stored} not stored (already present), {len(ids)} profiles, "
            f"{seconds:.1f} s"
        )
