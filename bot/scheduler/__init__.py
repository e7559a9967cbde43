"""Proactive work: pattern mining, the scheduler loop, suggestions and their safety policy.

- :mod:`bot.scheduler.normalise` requests without mentions, emoji and filler; habit titles
- :mod:`bot.scheduler.mining`   recurring requests → habits (``MinedPattern``): daily, weekly,
  every other week, monthly (see docs/proactive.md)
- :mod:`bot.scheduler.tasks`    the proactive task and delivery tables: upsert, due, next slot
- :mod:`bot.scheduler.loop`     the APScheduler loop and its jobs (one leader at a time)
- :mod:`bot.scheduler.policy`   may this suggestion go to this person now?
- :mod:`bot.scheduler.cadence`  how acceptance changes a task's priority, backoff and status
- :mod:`bot.scheduler.suggest`  deliver a due task as a DM and act on ✅ / 🔕
"""

from __future__ import annotations
