"""What one vote says about one choice of a reply, given how likely the others were right.

For a decision ``d`` of the reply, with ``h_j`` the current probability that the option chosen
for each other decision ``j`` is the favourite, the misses among the others follow a
Poisson-binomial law ``K``, and the vote adds to the chosen option's evidence (in nats)::

    step_d = log( E[P(vote | K misses)] / E[P(vote | K + 1 misses)] )

with ``P(vote | k misses)`` the reaction curve (:mod:`bot.learning.bandit.params`). So what a
vote says about one choice depends on how likely the rest of the reply was to be right (the
curve is steepest around ``midpoint`` misses), and a choice the posterior is sure of hardly
moves. A step is at most ``max_step``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from bot.learning.bandit.params import Params


def _step(hits: Sequence[float], params: Params, reward: int) -> float:
    """The evidence (nats) a vote gives one choice, given the chance each other one is right."""
    misses = [1.0]  # the Poisson-binomial law of misses among the other choices
    for hit in hits:
        nxt = [0.0] * (len(misses) + 1)
        for k, p in enumerate(misses):
            nxt[k] += p * hit
            nxt[k + 1] += p * (1.0 - hit)
        misses = nxt
    like = _likes(params, reward, len(misses))
    if_right = sum(p * like[k] for k, p in enumerate(misses))
    if_wrong = sum(p * like[k + 1] for k, p in enumerate(misses))
    step = math.log(if_right / if_wrong)
    return max(-params.max_step, min(params.max_step, step))


@functools.lru_cache(maxsize=256)
def _likes(params: Params, reward: int, n: int) -> tuple[float, ...]:
    """``params.like(k, reward)`` for k = 0 … n."""
    return tuple(params.like(k, reward) for k in range(n + 1))
