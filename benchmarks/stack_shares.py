"""Read py-spy's raw stacks (``py-spy record --format raw``) as text: each function's inclusive
share of the samples under a root frame, and the top self shares.

``.venv/bin/python benchmarks/stack_shares.py STACKS [ROOT] [--top N]``: ROOT is the start of a
frame (e.g. "run (bench_decide_request.py" or "DecideView.dispatch"); samples without it are
left out. Informs, judges nothing.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys


def shares(path: str, root: str) -> tuple[int, collections.Counter, collections.Counter]:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            start = next((i for i, f in enumerate(frames) if f.startswith(root)), None)
            if start is None:
                continue
            n = int(count)
            total += n
            names = [re.sub(r":\d+\)$", ")", f) for f in frames[start:]]
            for name in set(names):
                inclusive[name] += n
            own[names[-1]] += n
    return total, inclusive, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks")
    parser.add_argument("root", nargs="?", default="")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    total, inclusive, own = shares(args.stacks, args.root)
    print(f"samples {total}")
    for name, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f} % {name}")
    print("--- self")
    for name, n in own.most_common(args.top // 2):
        print(f"{100 * n / total:5.1f} % {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
