"""Numerical analysis of dumps: pooling to probing units, attention similarity, linear CKA.

- `pooling`: hidden states `[L+1, B, T, H]` -> sentence, pair or word vectors, all layers at once.
- `attention`: per-head cosine / Jensen–Shannon similarity and entropy of attention maps,
  accumulated over examples in O(L·Hh) memory.
- `cka`: linear CKA per layer, in memory or streamed over chunks of rows.
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

__all__ = [
    "AttentionComparison",
    "EntropyAccumulator",
    "StreamingCKA",
    "WordVectors",
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
    "resolve_joint_pooling",
    "to_tidy_rows",
    "word_pool",
]
