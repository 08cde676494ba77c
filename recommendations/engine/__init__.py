"""The pure recommendation core (numpy, scipy, implicit; no Django).

- ``matrix``: interactions -> CSR user x item matrix (event weights, time decay, bounded memory)
- ``models``: popularity (global, per category, per group), item-item co-occurrence (cosine or
  BM25), implicit-feedback ALS (the ``implicit`` library), a category fallback for cold items
- ``metrics``: precision@k, recall@k, MAP@k, NDCG@k, catalog coverage
- ``split``: per-user time split; ``evaluation``: the tuning/evaluation protocol
- ``synthetic``: a generator with planted taste groups
"""

import os

# implicit warns when OpenBLAS runs its own threads under implicit's; set before numpy loads
# when this package is the first to import it (models also cap BLAS threads at run time).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
