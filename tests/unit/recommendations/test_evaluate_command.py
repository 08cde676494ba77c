"""manage.py evaluate_recommender: figures for every model, malformed files refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from recommendations.engine.synthetic import generate

from .conftest import ROOT, write_interactions


def _run(*args):
    out = io.StringIO()
    call_command("evaluate_recommender", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_evaluate_recommender__synthetic_csv__prints_protocol_and_json_per_model(interactions_csv):
    # Given a synthetic interactions file with planted tastes
    # When evaluating it with --json and k=5
    output = _run(
        "--interactions",
        str(interactions_csv),
        "--k",
        "5",
        "--json",
        "--time-budget",
        "30",
        "--threads",
        "1",
    )
    # Then the protocol is described, and the last line is one JSON object keyed by model
    assert "last 20% of each user's interactions by time" in output
    assert "validation split (same rule) of the training part only" in output
    figures = json.loads(output.strip().splitlines()[-1])
    assert set(figures) == {"als", "item_item", "popularity"}
    for metrics in figures.values():
        assert set(metrics) == {"precision@5", "recall@5", "map@5", "ndcg@5", "coverage", "users"}
        assert 0 <= metrics["precision@5"] <= 1
    # and ALS learnt the tastes: clearly above popularity
    assert figures["als"]["precision@5"] > 1.5 * figures["popularity"]["precision@5"]


def test_evaluate_recommender__iso_timestamps__same_figures_as_unix_seconds(tmp_path):
    # Given the same interactions once with Unix seconds, once with ISO-8601 timestamps
    data = generate(n_interactions=3_000, n_users=150, n_items=80, n_groups=2, seed=1)
    unix = write_interactions(tmp_path / "unix.csv", data)
    iso = write_interactions(tmp_path / "iso.csv", data, iso=True)
    # When evaluating both
    a = _run("--interactions", str(unix), "--json", "--time-budget", "0", "--threads", "1")
    b = _run("--interactions", str(iso), "--json", "--time-budget", "0", "--threads", "1")
    # Then the figures agree
    assert json.loads(a.splitlines()[-1]) == json.loads(b.splitlines()[-1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "empty file", id="empty"),
        pytest.param("user,item,timestamp\nu,i,1\n", "line 1, column 'weight'", id="no-weight"),
        pytest.param(
            "user,item,weight,timestamp\nu,i,1\n", "line 2: expected 4 fields", id="short-row"
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,1,1\nu,i,abc,1\n",
            "line 3, column 'weight': not a number",
            id="weight-text",
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,nan,1\n", "line 2, column 'weight'", id="weight-nan"
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,1,yesterday\n",
            "line 2, column 'timestamp'",
            id="timestamp-text",
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,1,1700000000000\n",
            "line 2, column 'timestamp': timestamp out of range",
            id="milliseconds",
        ),
        pytest.param(
            "user,item,weight,timestamp\n,i,1,1\n",
            "line 2, column 'user': empty id",
            id="empty-user",
        ),
        pytest.param(
            "user,item,weight,timestamp\nu," + "x" * 300 + ",1,1\n",
            "line 2, column 'item': id longer",
            id="long-id",
        ),
        pytest.param(
            'user,item,weight,timestamp\nu,i,1,1\n"u,i,1,1\n',
            "line 3: expected 4 fields, found 1",
            id="open-quote",
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,0,1\n",
            "no interaction with a positive",
            id="only-zero-weights",
        ),
        pytest.param(
            "user,item,weight,timestamp\nu,i,1,1\n",
            "no user has at least 5",
            id="nobody-to-evaluate",
        ),
    ],
)
def test_evaluate_recommender__malformed_file__refused_naming_line_and_column(
    write_csv, text, expected
):
    # Given a malformed interactions file
    path = write_csv(text)
    # When evaluating it / Then a CommandError names where it is wrong
    with pytest.raises(CommandError, match=expected.replace("(", r"\(")):
        _run("--interactions", str(path), "--time-budget", "0")


def test_evaluate_recommender__too_many_rows__refused_with_the_limit(write_csv):
    # Given 4 rows and a limit of 3 / When / Then refused at the 4th data row (line 5)
    path = write_csv("user,item,weight,timestamp\n" + "u,i,1,1\n" * 4)
    with pytest.raises(CommandError, match="line 5: more than 3 rows"):
        _run("--interactions", str(path), "--max-rows", "3")


def test_evaluate_recommender__huge_field__refused_not_loaded(write_csv):
    # Given a 1 MB field / When / Then refused by the CSV field limit
    path = write_csv("user,item,weight,timestamp\nu,i,1," + "9" * 1_000_000 + "\n")
    with pytest.raises(CommandError, match="malformed CSV"):
        _run("--interactions", str(path))


def test_evaluate_recommender__malformed_file_from_the_shell__exit_1_without_traceback(write_csv):
    # Given a malformed file
    path = write_csv("user,item,weight,timestamp\nu,i,heavy,1\n")
    # When running manage.py as a user would
    done = subprocess.run(
        [sys.executable, "manage.py", "evaluate_recommender", "--interactions", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it exits non-zero with one error line and no traceback
    assert done.returncode != 0
    assert "line 2, column 'weight'" in done.stderr
    assert "Traceback" not in done.stderr
