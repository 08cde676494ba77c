"""The import contracts' configuration covers every first-party package (pyproject.toml)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_import_contracts__first_party_packages__all_in_root_packages():
    # Given the first-party packages ruff knows and the ones import-linter analyses
    config = _pyproject()
    first_party = set(config["tool"]["ruff"]["lint"]["isort"]["known-first-party"]) - {"tests"}
    existing = {name for name in first_party if (ROOT / name / "__init__.py").exists()}
    analysed = set(config["tool"]["importlinter"]["root_packages"])
    # Then every existing package is analysed (a new app merged without this line escapes the
    # contracts), and no missing one is listed (import-linter refuses to start then)
    assert existing - analysed == set()
    assert analysed - existing == set()


def test_import_contracts__layers__every_root_package_placed():
    # Given the layers contract
    config = _pyproject()["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    placed = {
        name.strip().strip("()") for layer in layers for name in layer.replace("|", ":").split(":")
    }
    # Then each analysed package sits in a layer (an unplaced one could import anything)
    assert set(config["root_packages"]) - placed == set()
