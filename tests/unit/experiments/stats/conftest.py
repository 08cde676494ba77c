"""Helpers for the statistics tests: the reference engine (gbstats, a dev-only dependency)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def gb():
    """The reference engine's classes, imported only here (the module must never import it)."""
    pytest.importorskip("gbstats")
    from gbstats.bayesian import tests as bayes
    from gbstats.frequentist import tests as freq
    from gbstats.gbstats import check_srm
    from gbstats.models import statistics as stats

    return SimpleNamespace(
        EffectBayesianABTest=bayes.EffectBayesianABTest,
        EffectBayesianConfig=bayes.EffectBayesianConfig,
        GaussianPrior=bayes.GaussianPrior,
        FrequentistConfig=freq.FrequentistConfig,
        SequentialConfig=freq.SequentialConfig,
        SequentialTwoSidedTTest=freq.SequentialTwoSidedTTest,
        TwoSidedTTest=freq.TwoSidedTTest,
        check_srm=check_srm,
        ProportionStatistic=stats.ProportionStatistic,
        RatioStatistic=stats.RatioStatistic,
        RegressionAdjustedStatistic=stats.RegressionAdjustedStatistic,
        SampleMeanStatistic=stats.SampleMeanStatistic,
    )
