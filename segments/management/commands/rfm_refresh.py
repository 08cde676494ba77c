"""manage.py rfm_refresh [--as-of YYYY-MM-DD] [--window-days N] [--json] [--no-documents]

Scores the active base now (what the beat task does) and prints each named segment's size and
mean R/F/M, then runs the active RFM segments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from segments import rfm, runs
from segments.models import Segment, SegmentKind


class Command(BaseCommand):
    help = "Recompute RFM scores of the active customer base, then the RFM segments."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of", default=None, help="Scoring instant (ISO date); default now."
        )
        parser.add_argument("--window-days", type=int, default=None)
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        parser.add_argument(
            "--no-documents",
            action="store_true",
            help="Do not refresh condition segments and cached documents of changed profiles.",
        )

    def handle(self, *args, **options) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = datetime.fromisoformat(options["as_of"])
            except ValueError:
                raise CommandError(f"--as-of: not an ISO date: {options['as_of']!r}") from None
            as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        window = options["window_days"]
        if window is not None and not 1 <= window <= 36500:
            raise CommandError("--window-days: between 1 and 36500")
        result = rfm.rfm_scores_refresh(
            as_of=as_of, window_days=window, refresh_documents=not options["no_documents"]
        )
        for segment in Segment.objects.filter(is_active=True, kind=SegmentKind.RFM):
            runs.segment_run(segment_id=segment.pk, trigger="command")
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        self.stdout.write(
            f"RFM as of {result.as_of:%Y-%m-%d %H:%M} UTC, window {result.window_days} days: "
            f"{result.customers} customers scored, {result.written} written, "
            f"{result.cleared} cleared, {result.seconds:.1f} s"
        )
        header = f"{'segment':<20} {'customers':>9} {'share':>6} {'R':>5} {'F':>5} {'M':>5}"
        header += f" {'recency d':>9} {'orders':>7} {'spend $':>9}"
        self.stdout.write(header)
        for row in result.segments.values():
            n = row["customers"]
            share = 100 * n / result.customers if result.customers else 0
            if not n:
                self.stdout.write(f"{row['label']:<20} {0:>9} {0:>5.1f}%")
                continue
            self.stdout.write(
                f"{row['label']:<20} {n:>9} {share:>5.1f}% {row['mean_r']:>5.2f} "
                f"{row['mean_f']:>5.2f} {row['mean_m']:>5.2f} {row['mean_recency_days']:>9.1f} "
                f"{row['mean_frequency']:>7.2f} {row['mean_monetary']:>9.2f}"
            )
