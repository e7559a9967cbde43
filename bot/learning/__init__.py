"""Learning from feedback: reactions become ratings, ratings become preferences.

:mod:`bot.learning.bandit` holds the preference learner (Thompson sampling on a hierarchical
posterior of each person's favourite options, team → user); it is pure data and arithmetic,
storage is the caller's.
"""

from __future__ import annotations
