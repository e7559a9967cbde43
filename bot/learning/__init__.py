"""Learning from feedback: reactions become ratings, ratings become preferences.

:mod:`bot.learning.bandit` holds the preference learner (hierarchical Thompson sampling on
Beta posteriors, team → user); it is pure data and arithmetic, storage is the caller's.
"""

from __future__ import annotations
