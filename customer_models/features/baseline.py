"""Non-learned rankings of a :class:`~customer_models.features.featurizer.CandidateBlock`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from customer_models.features.featurizer import CandidateBlock
from customer_models.features.layout import SOURCE_O1, SOURCE_O2


def markov2_ranking(block: CandidateBlock) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Scores and validity that reproduce the ``markov2`` prefetcher's ranked list.

    The featurizer lists order-2 entries first, in row order, then the new order-1 entries, then
    lag-2 entries; ``markov2`` uses the first two groups only. The score of a candidate is minus
    its list position; candidates that only the lag-2 table listed, and padding, are invalid
    (score ``-inf``). Replayed by :func:`cache_core.prefetch.scored.replay_scored` with
    ``threshold=-inf`` and this mask as ``cand_valid``, the result equals ``markov2``'s whenever
    the featurizer's widths equal the prefetcher's and
    :attr:`~customer_models.features.config.FeaturizerConfig.covers_markov2` holds.

    Parameters
    ----------
    block
        A block from :class:`~customer_models.features.featurizer.CandidateFeaturizer`.

    Returns
    -------
    tuple
        ``(scores, valid)``: ``float32[n, M]`` and ``bool[n, M]``.
    """
    n, m = block.cand_ids.shape
    valid = (block.cand_source & (SOURCE_O1 | SOURCE_O2)) != 0
    position = np.broadcast_to(np.arange(m, dtype=np.float32), (n, m))
    scores = np.where(valid, -position, np.float32(-np.inf)).astype(np.float32)
    return scores, valid
