"""Experiment statistics: a pure, documented API (no Django), stable from now on.

```python
from experiments.stats import Proportion, Mean, ttest, sequential_ttest, bayesian, srm_p_value

ttest(control, treatment, *, relative=True, alpha=0.05) -> Estimate       # p_value
sequential_ttest(control, treatment, *, relative=True, alpha=0.05, tuning=5000) -> Estimate
bayesian(control, treatment, *, relative=True) -> Estimate                # chance_to_win, risk
srm_p_value(users, weights) -> float
```

Numbers agree with GrowthBook's gbstats 0.8.0 (see ``_tests``); the extras are ``Ratio`` and
``Cuped`` statistics, ``holm`` and ``benjamini_hochberg`` adjustments, planning
(``power``, ``minimum_detectable_effect``, ``sample_size``) and ``thompson_weights``.
"""

from ._adjust import benjamini_hochberg, holm
from ._bandit import thompson_weights
from ._power import minimum_detectable_effect, power, sample_size
from ._srm import srm_p_value
from ._tests import GaussianPrior, bayesian, cuped_theta, sequential_ttest, ttest
from ._types import Cuped, Estimate, Mean, Proportion, Ratio

__all__ = [
    "Cuped",
    "Estimate",
    "GaussianPrior",
    "Mean",
    "Proportion",
    "Ratio",
    "bayesian",
    "benjamini_hochberg",
    "cuped_theta",
    "holm",
    "minimum_detectable_effect",
    "power",
    "sample_size",
    "sequential_ttest",
    "srm_p_value",
    "thompson_weights",
    "ttest",
]
