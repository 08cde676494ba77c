"""manage.py segment_import KEY FILE [--id-type visitor|user] [--replace] [--no-run]

Loads a CSV of visitor or user ids (one per line, optional header visitor_id/user_id) into a
static segment, pseudonymised as they are read (never stored raw), with a progress bar; then
runs the segment so its membership follows.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segments import runs
from segments.models import Segment
from segments.static_lists import (
    StaticListError,
    static_keys_from_csv,
    static_list_add,
    text_lines,
)


class Command(BaseCommand):
    help = "Import a CSV of visitor or user ids into a static segment."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key")
        parser.add_argument("file", type=Path)
        parser.add_argument("--id-type", choices=["visitor", "user"], default=None)
        parser.add_argument("--replace", action="store_true", help="Replace the whole list.")
        parser.add_argument("--no-run", action="store_true", help="Do not run the segment after.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, key: str, file: Path, **options) -> None:
        segment = Segment.objects.filter(key=key).first()
        if segment is None:
            raise CommandError(f"No segment {key!r}")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        started = time.monotonic()
        quiet = options["no_progress"]
        with (
            file.open("rb") as raw,
            tqdm(
                total=file.stat().st_size,
                unit="B",
                unit_scale=True,
                desc="read",
                disable=quiet,
                file=self.stderr._out,
                mininterval=0.5,
            ) as bar,
        ):

            def lines():
                for line in text_lines(raw):
                    bar.update(len(line.encode()))
                    yield line

            try:
                id_type, keys = static_keys_from_csv(lines(), id_type=options["id_type"])
            except StaticListError as exc:
                raise CommandError(f"{file}: {exc}") from None
        with tqdm(
            total=len(keys),
            unit=" ids",
            desc="store",
            disable=quiet,
            file=self.stderr._out,
            mininterval=0.5,
        ) as bar:
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                bar.update(n - done)
                done = n

            try:
                result = static_list_add(
                    segment=segment,
                    id_type=id_type,
                    keys=keys,
                    replace=options["replace"],
                    progress=progress,
                )
            except StaticListError as exc:
                raise CommandError(str(exc)) from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"{segment.key}: {result.received} {id_type} ids read, {result.added} added, "
            f"{result.removed} removed, list size {result.size}, {seconds:.1f} s"
        )
        if not options["no_run"]:
            run = runs.segment_run(segment_id=segment.pk, trigger="import")
            if run is not None:
                self.stdout.write(
                    f"run {run.pk}: {run.status}, {run.size} members (+{run.entered} "
                    f"-{run.exited}), {run.duration_ms} ms"
                )
