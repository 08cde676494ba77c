"""``manage.py evaluate_recommender --interactions FILE.csv [--k 10] [--json]``.

Evaluates ALS, item-item and popularity on any ``user,item,weight,timestamp`` file with the
protocol of ``recommendations.engine.evaluation`` (per-user time split, tuning on a validation
split cut from the training part only). Prints the protocol and the figures; with ``--json`` the
last line is one JSON object keyed by model name. A malformed file is refused with its line and
column (CommandError: exit status 1, no traceback).
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from recommendations.engine.csvio import DEFAULT_MAX_ROWS, CsvError, read_interactions
from recommendations.engine.evaluation import run_protocol

MAX_K = 1000
HARD_MAX_ROWS = 50_000_000


def _positive_int(limit: int):
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise CommandError(f"{raw!r} is not an integer") from None
        if not 1 <= value <= limit:
            raise CommandError(f"{value} is not between 1 and {limit}")
        return value

    return parse


def _budget(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(f"--time-budget: {raw!r} is not a number") from None
    if not 0 <= value <= 86_400:
        raise CommandError("--time-budget must be between 0 and 86400 seconds")
    return value


class Command(BaseCommand):
    help = (
        "Evaluate ALS, item-item and popularity on a user,item,weight,timestamp CSV: last 20 % of "
        "each user's interactions by time held out, hyperparameters tuned on a validation split "
        "of the training part only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interactions", required=True, help="CSV: user,item,weight,timestamp")
        parser.add_argument("--k", type=_positive_int(MAX_K), default=10, help="list length")
        parser.add_argument("--json", action="store_true", help="last line: JSON per model")
        parser.add_argument(
            "--keep-seen",
            action="store_true",
            help="do not exclude items the user already interacted with (default: excluded)",
        )
        parser.add_argument(
            "--time-budget",
            type=_budget,
            default=240.0,
            help="seconds of hyperparameter search after the defaults (default 240)",
        )
        parser.add_argument(
            "--max-rows",
            type=_positive_int(HARD_MAX_ROWS),
            default=DEFAULT_MAX_ROWS,
            help=f"refuse files with more data rows (default {DEFAULT_MAX_ROWS})",
        )
        parser.add_argument("--threads", type=_positive_int(64), default=None)

    def handle(self, *args, **options):
        k = options["k"]
        path = options["interactions"]
        try:
            loaded = read_interactions(path, max_rows=options["max_rows"])
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CommandError(f"{path}: is a directory") from None
        except CsvError as exc:
            raise CommandError(f"{path}: {exc}") from None
        data = loaded.dataset
        out = self.stdout
        progress = sys.stderr if options["json"] else None

        def log(message: str) -> None:
            if progress is not None:
                progress.write(message + "\n")
            else:
                out.write(message)

        report = run_protocol(
            data,
            k=k,
            exclude_seen=not options["keep_seen"],
            budget_seconds=options["time_budget"],
            threads=options["threads"],
            log=log,
        )
        p = report.protocol
        if not report.results:
            raise CommandError(
                f"{path}: no user has at least {p['min_interactions']} interactions with a "
                "held-out item to evaluate"
            )
        out.write("Protocol")
        out.write(
            f"  {p['interactions']} interactions ({loaded.ignored_non_positive} rows with "
            f"weight <= 0 left out), {p['users']} users, {p['items']} items"
        )
        out.write(
            f"  test: last {p['test_share']:.0%} of each user's interactions by time, users "
            f"with >= {p['min_interactions']}: {p['test_interactions']} interactions, "
            f"{p['evaluated_users']} users evaluated"
        )
        out.write(
            f"  tuning: validation split (same rule) of the training part only, "
            f"{p['validation_users']} users, NDCG@{k}, {p['tuning_seconds']} s"
            + (" (stopped by the time budget)" if p["tuning_stopped_by_budget"] else "")
        )
        out.write(f"  ALS: {p['als_params']}")
        out.write(f"  item-item: {p['item_item_params']}")
        out.write(f"  seen items {'excluded' if p['exclude_seen'] else 'kept'}")
        out.write("")
        header = f"{'model':<12}{'P@k':>9}{'R@k':>9}{'MAP@k':>9}{'NDCG@k':>9}{'coverage':>10}"
        out.write(header.replace("@k", f"@{k}"))
        figures = {}
        for name, m in report.results.items():
            out.write(
                f"{name:<12}{m['precision']:>9.4f}{m['recall']:>9.4f}{m['map']:>9.4f}"
                f"{m['ndcg']:>9.4f}{m['coverage']:>10.4f}"
            )
            figures[name] = {
                f"precision@{k}": m["precision"],
                f"recall@{k}": m["recall"],
                f"map@{k}": m["map"],
                f"ndcg@{k}": m["ndcg"],
                "coverage": m["coverage"],
                "users": m["users"],
            }
        if options["json"]:
            out.write(json.dumps(figures, sort_keys=True))
