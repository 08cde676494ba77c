"""manage.py segment_run KEY [--json]: run one segment now, synchronously; print its run record."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from segments import runs
from segments.api.serializers import SegmentRunSerializer
from segments.models import Segment


class Command(BaseCommand):
    help = "Run one segment synchronously and print its run record."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key")
        parser.add_argument("--json", action="store_true", help="The run record as JSON.")

    def handle(self, *args, key: str, **options) -> None:
        segment = Segment.objects.filter(key=key).first()
        if segment is None:
            raise CommandError(f"No segment {key!r}")
        try:
            run = runs.segment_run(segment_id=segment.pk, trigger="command")
        except Exception as exc:  # the run record says failed; the command says why
            raise CommandError(f"run failed: {type(exc).__name__}: {exc}") from exc
        if run is None:
            raise CommandError(f"segment {key!r} is being run by another process; try later")
        record = SegmentRunSerializer(run).data
        if options["json"]:
            self.stdout.write(json.dumps(record, indent=2, default=str))
        else:
            self.stdout.write(
                f"run {run.pk} of {key}: {run.status}, {run.size} members "
                f"(+{run.entered} -{run.exited}), {run.profiles_scanned} scanned, "
                f"{run.duration_ms} ms"
            )
        if run.status != "succeeded":
            raise CommandError(f"run {run.pk} {run.status}: {run.errors}")
