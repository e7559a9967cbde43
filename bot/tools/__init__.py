"""Tools personalities call, and the one executor every call passes through.

- :mod:`bot.tools.registry`   the tools a personality may call (``chorus_tools``), clashes resolved
- :mod:`bot.tools.schema`     JSON-schema checks of declarations and of each call's arguments
- :mod:`bot.tools.personal`   defaults the model left out, from the person's learned style
- :mod:`bot.tools.policy`     admin allow/deny lists × autonomy comfort × side effect
- :mod:`bot.tools.confirm`    "✅ to run, ❌ to cancel", answered by the person who asked
- :mod:`bot.tools.executor`   validate → policy → confirm → run with a timeout → audit
- :mod:`bot.tools.audit_log`  the audit entries, written in the background in batches
- :mod:`bot.tools.loop`       the generate stage's model ↔ tools rounds, bounded in rounds and time
- :mod:`bot.tools.service`    all of it for one dispatcher, and the per-request :class:`ToolUse`
"""

from __future__ import annotations

from bot.tools.confirm import Confirmations
from bot.tools.executor import CallRecord, CallScope, Executor, ToolInvocation
from bot.tools.loop import ToolUse, run_with_tools
from bot.tools.policy import Decision, Policy
from bot.tools.registry import RegisteredTool, Toolbox, ToolRegistry

__all__ = [
    "CallRecord",
    "CallScope",
    "Confirmations",
    "Decision",
    "Executor",
    "Policy",
    "RegisteredTool",
    "ToolInvocation",
    "ToolRegistry",
    "ToolUse",
    "Toolbox",
    "run_with_tools",
]
