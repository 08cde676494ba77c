"""``manage.py import_catalog FILE.csv``: create or update catalog items by sku (idempotent).

Columns: sku, title (required), category, price, url, image_url, in_stock, attributes (a JSON
object); empty optional cells take the field's default. The whole file is validated first: a
bad row is refused with its line and column and nothing is written.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.services import CatalogError, catalog_import, catalog_rows_validate


class Command(BaseCommand):
    help = "Import catalog items from a CSV (sku,title,category,price,url,image_url,...)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file with a header row")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path, no_progress=False, **options):
        try:
            rows = catalog_rows_validate(path)
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CommandError(f"{path}: is a directory") from None
        except CatalogError as exc:
            raise CommandError(f"{path}: {exc}") from None
        with tqdm(total=len(rows), unit="items", disable=no_progress, file=sys.stderr) as bar:
            result = catalog_import(rows=rows, progress=bar.update)
        self.stdout.write(
            f"{result.rows} rows: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged"
        )
