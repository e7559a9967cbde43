"""Preferences that adapt: Thompson sampling on a hierarchical posterior, team → user.

A *decision* is one dimension of a reply with discrete options: the four style dimensions
(``length``, ``formality``, ``structure``, ``emoji``) and ``personality:<request kind>`` whose
options are personality names. The learner's belief, per person and decision, is the
posterior probability of each option being the one the person likes best (their
*favourite*). A reply makes several decisions at once and gets one 👍 or 👎, so a vote is
evidence about all of them together. The model, module by module:

* :mod:`~bot.learning.bandit.params`: the constants (:class:`Params`) and the *reaction curve*,
  the chance of a 👍 when ``k`` of the reply's choices miss the person's favourites.
* :mod:`~bot.learning.bandit.decisions`: decisions, the :class:`Choice` made for one, and how
  style options map onto a personality's :class:`~bot.personality.Style`.
* :mod:`~bot.learning.bandit.state`: what has been learned, as plain data (:class:`State`,
  :class:`Vote`, the person's ledger), its *decay*, :func:`reset` and :func:`prune`.
* :mod:`~bot.learning.bandit.posterior`: the *hierarchy*, a person's prior being what the rest
  of their team likes, as strongly as the team's ratings show its members follow it (the
  share, and the specialist's head start, are learned per team); :func:`beliefs`.
* :mod:`~bot.learning.bandit.curve` and :mod:`~bot.learning.bandit.credit`: *credit*, how a
  vote on a whole reply becomes evidence for each of its choices (:func:`update`,
  :func:`retract`, and re-crediting recent votes).
* :mod:`~bot.learning.bandit.choose`: *Thompson sampling* (:func:`choose`,
  :func:`choose_style`) and routing (:func:`route`, sampled too).
* :mod:`~bot.learning.bandit.explain`: :func:`explain`, what was learned and how sure.

The reaction curve's constants and the exploration temperature were tuned on seeds 100-123
of ``bench/learning.py``'s simulator (the priors are not: they are learned); everything is
deterministic given a :class:`random.Random` and explicit times, and every state is plain
data with ``to_dict``/``from_dict``.
"""

from bot.learning.bandit.choose import choose, choose_style, route
from bot.learning.bandit.credit import pool, retract, update
from bot.learning.bandit.decisions import (
    STYLE_OPTIONS,
    Choice,
    Pick,
    apply_style,
    personality_decision,
    style_defaults,
)
from bot.learning.bandit.explain import OptionBelief, Preference, explain
from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.posterior import beliefs
from bot.learning.bandit.state import State, Vote, prune, reset

__all__ = [
    "DEFAULT_PARAMS",
    "STYLE_OPTIONS",
    "Choice",
    "OptionBelief",
    "Params",
    "Pick",
    "Preference",
    "State",
    "Vote",
    "apply_style",
    "beliefs",
    "choose",
    "choose_style",
    "explain",
    "personality_decision",
    "pool",
    "prune",
    "reset",
    "retract",
    "route",
    "style_defaults",
    "update",
]
