"""The learner's constants, and the reaction curve they shape.

A reply makes several decisions at once and gets one 👍 or 👎, so a vote is evidence about all
of them together; the model says how::

    P(👍 | k of the reply's choices miss the person's favourites)
        = floor + (1 - 2 floor) / (1 + exp(slope (k - midpoint)))

(``floor``, ``slope`` and ``midpoint`` are :class:`Params`' ``like_floor``, ``like_slope`` and
``like_midpoint``). The reaction curve's constants and the rest of :class:`Params` were tuned on
seeds 100-123 of ``bench/learning.py``'s simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Params:
    """The learner's constants (``bench/learning.py`` measures them; see the module doc).

    ``learn_priors`` (on): how often a person's favourite is their team's (the *share*) and how
    many times likelier than another option the kind's specialist is a priori (the *head
    start*) are learned from the ratings, per team, over ``share_grid`` × ``head_start_grid``
    (:mod:`~bot.learning.bandit.posterior`); the grids span "nothing shared" to "almost all",
    and "specialists rarely liked" to "almost always", with every point alike a priori. Off:
    the constants ``team_share`` and ``head_start`` are used instead. ``style_head_start`` is
    how many times likelier a personality's own style option is a priori. ``like_floor``,
    ``like_slope`` and ``like_midpoint`` shape the reaction curve. ``max_weight`` caps a vote's
    weight, ``max_step`` the evidence (nats) one vote of weight 1 may add to an option.
    ``half_life_s`` is how long evidence takes to lose half its weight; ``exploration`` is the
    temperature of the Thompson draws (1 draws from the posterior itself); ``explore_one``
    lets at most one style decision of a reply depart from its likeliest option.
    ``recredit`` is how many of a person's latest votes have their credit shared out again
    after each vote, ``recredit_sweeps`` how many times (0 keeps the credit given at first).
    """

    learn_priors: bool = True
    share_grid: tuple[float, ...] = (0.0, 0.3, 0.55, 0.75, 0.9, 0.97)
    head_start_grid: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    team_share: float = 0.7
    head_start: float = 10.0
    style_head_start: float = 1.0
    like_floor: float = 0.1
    like_slope: float = 1.5
    like_midpoint: float = 2.0
    max_weight: float = 1.0
    max_step: float = 1.0
    half_life_s: float = 90 * _DAY
    exploration: float = 0.3
    explore_one: bool = True
    recredit: int = 20
    recredit_sweeps: int = 2

    def __post_init__(self) -> None:
        positive = (self.half_life_s, self.max_step, self.max_weight, self.exploration)
        if min(positive) <= 0 or self.like_slope <= 0:
            raise ValueError(
                "half_life_s, max_step, max_weight, exploration and like_slope must be positive"
            )
        if not 0 <= self.team_share < 1:
            raise ValueError("team_share must be at least 0 and below 1")
        if not self.share_grid or not all(0 <= s < 1 for s in self.share_grid):
            raise ValueError("share_grid must hold shares at least 0 and below 1")
        if not self.head_start_grid or min(self.head_start_grid) <= 0:
            raise ValueError("head_start_grid must hold positive head starts")
        if self.head_start <= 0 or self.style_head_start <= 0:
            raise ValueError("head_start and style_head_start must be positive")
        if self.recredit < 0 or self.recredit_sweeps < 0:
            raise ValueError("recredit and recredit_sweeps must not be negative")
        if not 0 < self.like_floor < 0.5:
            raise ValueError("like_floor must be between 0 and 0.5")

    def like(self, misses: int, reward: int) -> float:
        """The chance of ``reward`` (+1 👍, -1 👎) for a reply that misses ``misses`` favourites."""
        up = self.like_floor + (1.0 - 2.0 * self.like_floor) / (
            1.0 + math.exp(self.like_slope * (misses - self.like_midpoint))
        )
        return up if reward > 0 else 1.0 - up


DEFAULT_PARAMS = Params()
