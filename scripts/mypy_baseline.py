"""mypy against a recorded baseline that may only shrink (`make lint`).

Runs mypy on Mosaic's packages and compares its errors with `mypy-baseline.txt`, ignoring line
numbers (they move with every edit above an error): each error is `path: [code] message`, counted
with its multiplicity. A new error (one more than the baseline holds) fails with the list; fixed
errors are reported, and `--update` rewrites the baseline, which is how it shrinks.

    python scripts/mypy_baseline.py            # check
    python scripts/mypy_baseline.py --update   # record the current errors (after fixing some)
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "mypy-baseline.txt"
PACKAGES = [
    "config", "core", "rules", "personalization", "segments", "content", "experiments",
    "identity", "access", "demo", "recommendations", "analysis", "profiles", "ingestion",
]  # fmt: skip
_ERROR = re.compile(
    r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<message>.*?)\s+\[(?P<code>[\w-]+)\]$"
)


def current_errors() -> list[str]:
    packages = [name for name in PACKAGES if (ROOT / name).is_dir()]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty", *packages],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 1):  # 2: mypy itself failed (config, crash)
        sys.exit(f"mypy failed:\n{result.stdout}{result.stderr}")
    errors = []
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors.append(f"{match['path']}: [{match['code']}] {match['message']}")
    return sorted(errors)


def main(argv: list[str]) -> int:
    errors = current_errors()
    if "--update" in argv:
        BASELINE.write_text("".join(f"{line}\n" for line in errors))
        print(f"mypy baseline: {len(errors)} errors recorded in {BASELINE.name}")
        return 0
    baseline = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    now = Counter(errors)
    new = now - baseline
    fixed = baseline - now
    if new:
        print(f"mypy: {sum(new.values())} error(s) not in {BASELINE.name}:")
        for line in sorted(new.elements()):
            print(f"  {line}")
        return 1
    print(f"mypy: {len(errors)} errors, none new (baseline {sum(baseline.values())}).")
    if fixed:
        print(f"  {sum(fixed.values())} fixed: run `python scripts/mypy_baseline.py --update`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
