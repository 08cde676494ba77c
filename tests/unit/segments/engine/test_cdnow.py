"""Real data: CDNOW purchases, calibration ending 1997-09-30, target "any purchase after it".

The model is judged on customers it never trained on (a stratified 30 % holdout), beside the
recency-only baseline fitted on the same split. A second cutoff and window (1997-06-30, 90 days,
validated on the later cutoff 1997-09-30) checks the defaults were not tuned to the first.
"""

from __future__ import annotations

import numpy as np
import pytest

from segments.engine.cdnow import day, read_cdnow
from segments.engine.clustering import cluster
from segments.engine.features import build_feature_matrix, catalogue, profiles_seen_by
from segments.engine.propensity import Target, holdout_split, time_split, train

# Model training on the full data set takes minutes per test on the shared 2-core machine, and
# went over the suite's 300 s timeout when both xdist workers and other work shared the cores: one
# xdist worker runs the module (its events fixture is loaded once), with a longer timeout.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdnow"), pytest.mark.timeout(900)]

SPECS = catalogue(event_types=["purchase"], windows_days=[30, 90])
CALIBRATION_END = day("1997-09-30")
# Real-data fits: slow on a busy shared machine (importances are lightened, AUC is unchanged).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
DATA_END = day("1998-06-30")


@pytest.fixture(scope="module")
def events(cdnow_path):
    return read_cdnow(cdnow_path)


@pytest.mark.parametrize("model_name", ["gradient_boosting", "logistic_regression"])
def test_cdnow__purchase_after_calibration__model_beats_recency_and_reaches_075(events, model_name):
    # Given CDNOW's 23,570 customers with features as of 1997-09-30
    # and the target "any purchase after it" (to the end of the data, 1998-06-30)
    window = (DATA_END - CALIBRATION_END) / 86400
    split = holdout_split(
        events, SPECS, Target("purchase", window), cutoff=CALIBRATION_END, holdout=0.3, seed=0
    )
    assert len(split.y_train) + len(split.y_valid) == 23570
    # When training the model and the recency-only baseline on the same 70 % of customers
    _, report = train(split, model_name, importance_sample=2000, importance_repeats=2)
    # Then on the 30 % it never saw the model beats the baseline and reaches 0.75 AUC
    print(model_name, report["metrics"]["auc"], report["baseline"]["auc"])
    assert report["metrics"]["auc"] >= 0.75
    assert report["metrics"]["auc"] > report["baseline"]["auc"]
    assert report["activated"]


def test_cdnow__other_cutoff_and_window__validated_on_a_later_cutoff(events):
    # Given a 90-day target, trained as of 1997-06-30 and validated as of 1997-09-30
    split = time_split(
        events,
        SPECS,
        Target("purchase", 90),
        cutoff=day("1997-06-30"),
        validation_cutoff=day("1997-09-30"),
    )
    # When training gradient boosting with the same defaults
    _, report = train(split, "gradient_boosting", importance_sample=2000, importance_repeats=2)
    # Then it still beats recency alone on the later cutoff
    print(report["metrics"]["auc"], report["baseline"]["auc"])
    assert report["metrics"]["auc"] > report["baseline"]["auc"]
    assert report["metrics"]["auc"] >= 0.75


def test_cdnow__rfm_clusters__silhouette_recorded_per_k(events):
    # Given the RFM features of every customer as of 1997-09-30
    ids = profiles_seen_by(events, CALIBRATION_END)
    fm = build_feature_matrix(events, ids, CALIBRATION_END, SPECS)
    X = fm.numeric_subset(["purchase_recency_days", "frequency", "monetary"])
    # When clustering over k = 2..8
    labels, _, report = cluster(
        X, ["purchase_recency_days", "frequency", "monetary"], k_range=(2, 8), seed=0
    )
    # Then every k has its silhouette and Davies-Bouldin, every customer a cluster,
    # and the chosen labelling is stable across seeds
    assert [r["k"] for r in report["per_k"]] == list(range(2, 9))
    assert all(0 < r["silhouette"] < 1 for r in report["per_k"])
    assert len(labels) == 23570
    assert np.all(labels >= 0)
    assert report["stability"]["mean"] > 0.8
    assert len({c["description"] for c in report["clusters"]}) == report["k"]
