"""Plans: for a request that needs several steps, the personality proposes the steps, the
person sees them with a confidence figure and approves, and they run one by one through the tool
executor (:mod:`bot.tools`), with progress in the thread.

- :mod:`bot.planner.plan`        the ``propose_plan`` tool and the checks a plan passes first
- :mod:`bot.planner.confidence`  the confidence figure: checks × the team's tool history × model
- :mod:`bot.planner.present`     the plan in the person's learned answer style
- :mod:`bot.planner.run`         proposal → check → show → ✅/❌ → steps → summary
"""

from __future__ import annotations

from bot.planner.plan import PLAN_TOOL, Plan, Step, draft
from bot.planner.run import Planner, PlanSession, requested

__all__ = ["PLAN_TOOL", "Plan", "PlanSession", "Planner", "Step", "draft", "requested"]
