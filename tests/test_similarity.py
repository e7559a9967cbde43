"""Clustering against the implementation it replaced: the same groups to the last bit of every
comparison, on random requests whose similarities often sit exactly on the threshold."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

from bot.scheduler import similarity
from bot.scheduler.similarity import Matrix

_WORDS = "metrics sales pipeline weekly inbox standup notes churn revenue calendar".split()


def _reference_cluster(x: Matrix, threshold: float) -> list[list[int]]:
    n = x.shape[0]
    if n == 0:
        return []
    labels: npt.NDArray[np.intp] = np.full(n, -1, dtype=np.intp)
    sums = np.zeros((n, x.shape[1]), dtype=np.float32)
    norms = np.ones(n, dtype=np.float32)
    k = 0
    for i in range(n):
        if k:
            sims = sums[:k] @ x[i] / norms[:k]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                labels[i] = best
                sums[best] += x[i]
                norms[best] = max(float(np.sqrt(sums[best] @ sums[best])), 1e-9)
                continue
        labels[i] = k
        sums[k] = x[i]
        norms[k] = max(float(np.sqrt(x[i] @ x[i])), 1e-9)
        k += 1
    centres = np.zeros((k, x.shape[1]), dtype=np.float32)
    np.add.at(centres, labels, x)
    lengths = np.linalg.norm(centres, axis=1, keepdims=True)
    np.divide(centres, lengths, out=centres, where=lengths > 0)
    # Each row to its closest centroid if close enough, else alone.
    final = [
        int(row.argmax()) if row[row.argmax()] >= threshold else -1 - i
        for i, row in enumerate(x @ centres.T)
    ]
    return [[i for i in range(n) if final[i] == label] for label in dict.fromkeys(final)]


def _requests(rng: random.Random, n: int) -> list[str]:
    # Two to four words of a small vocabulary: cosines of exactly 0.5 (two words sharing
    # one) are common, and so are texts with no content word.
    return [
        " ".join(rng.sample(_WORDS, rng.randint(1, 4))) if rng.random() > 0.05 else "thanks!"
        for _ in range(n)
    ]


def test_cluster_as_each_centroid_added_up_again() -> None:
    rng = random.Random(1)
    for threshold in (0.25, 0.5, 0.7):
        for _ in range(100):
            x, _ = similarity.vectors(_requests(rng, rng.randint(0, 90)))
            assert similarity.cluster(x, threshold) == _reference_cluster(x, threshold)
