"""Numerical analysis of dumps: pooling to probing units, attention and representation similarity.

- `pooling`: hidden states `[L+1, B, T, H]` -> sentence, pair or word vectors, all layers at once.
- `attention`: per-head cosine / Jensen–Shannon similarity and entropy of attention maps,
  accumulated over examples in O(L·Hh) memory.
- `cka`: linear CKA per layer, in memory or streamed over chunks of rows.
- `repsim`: CKA, the angular Procrustes distance and SVCCA per layer, from second moments
  accumulated over chunks of rows.
"""

from bioprobe.analysis.attention import (
    AttentionComparison,
    EntropyAccumulator,
    cosine_flat,
    head_entropy,
    js_rows,
    to_tidy_rows,
)
from bioprobe.analysis.cka import StreamingCKA, cka_per_layer, linear_cka
from bioprobe.analysis.pooling import (
    WordVectors,
    first_token,
    last_token,
    masked_mean,
    pool_pair_joint,
    pool_pair_separate,
    resolve_joint_pooling,
    word_pool,
)
from bioprobe.analysis.repsim import (
    METRICS,
    CrossMoments,
    canonical_correlations,
    procrustes_distance,
    similarity_per_layer,
    svcca,
)

__all__ = [
    "METRICS",
    "AttentionComparison",
    "CrossMoments",
    "EntropyAccumulator",
    "StreamingCKA",
    "WordVectors",
    "canonical_correlations",
    "cka_per_layer",
    "cosine_flat",
    "first_token",
    "head_entropy",
    "js_rows",
    "last_token",
    "linear_cka",
    "masked_mean",
    "pool_pair_joint",
    "pool_pair_separate",
    "procrustes_distance",
    "resolve_joint_pooling",
    "similarity_per_layer",
    "svcca",
    "to_tidy_rows",
    "word_pool",
]
