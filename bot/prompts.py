"""What the model reads from Chorus itself (as opposed to :mod:`bot.messages`, what people
read): tool results that say why a call did not run, the plan tool's description, the requests
of a plan's rounds. Kept apart so that wording for the model can be tuned without touching
what people see, and the other way round.
"""

from __future__ import annotations

__all__ = [
    "CONTINUE_CUT",
    "TOOL_REFUSALS",
    "TOOL_CANCELLED",
    "TOOL_EXPIRED",
    "TOOL_ROUNDS_EXHAUSTED",
    "PLAN_TOOL_DESCRIPTION",
    "PLAN_REQUESTED",
    "PLAN_SUMMARY_PROMPT",
    "PLAN_CALL_BESIDE",
    "plan_fix",
    "plan_bad_references",
    "MODEL_WARM_UP",
    "MODEL_PROBE",
]


#: Why a tool call did not run, as the model is told (it explains to the person).
TOOL_REFUSALS = {
    "denied": "An admin has not allowed this tool here.",
    "not_allowed": "This tool is not on the admin's list of tools allowed here.",
    "cannot_confirm": "This action needs the person's confirmation, which cannot be asked here.",
    "undeliverable": "The confirmation question could not be posted, so it did not run.",
    "out_of_time": "The time for tool calls in this answer ran out, so it did not run.",
}


TOOL_CANCELLED = "The person cancelled this action (❌); it did not run."


TOOL_EXPIRED = "The person did not confirm this action in time; it did not run."


#: Told to the model when the bound on tool rounds or time is reached.
TOOL_ROUNDS_EXHAUSTED = (
    "No more tool calls are possible for this answer. Answer with what you have, and say what "
    "you could not finish."
)


#: Offered to the model as the ``propose_plan`` tool's description.
PLAN_TOOL_DESCRIPTION = (
    "Propose a plan instead of calling tools directly when the request needs several steps, or "
    "any step that changes something. Each step names one of the other tools and its exact "
    "arguments; inside a text argument, {{step N}} stands for the result of an earlier step N. "
    "The person sees the plan and approves it before anything runs; you are told the outcome."
)


#: Added to the prompt when the person asks for a plan ("plan: …", "make a plan to …").
PLAN_REQUESTED = (
    "The person asked for a plan: answer by calling propose_plan with the steps (tools and "
    "exact arguments) that would do what they ask."
)


#: Asks the model to tell the person what the plan did (the plan's report follows).
PLAN_SUMMARY_PROMPT = (
    "The plan below was carried out step by step; progress was already shown. In the person's "
    "style, tell them briefly what was done and the results; if a step failed, say which and "
    "why, and what was not done.\n\n{report}"
)


#: Told to the model about a call it made beside ``propose_plan`` in the same round.
PLAN_CALL_BESIDE = "Not run: a plan was proposed in the same turn; make this call a step of it."


def plan_fix(problems: list[str]) -> str:
    """Told to the model when its plan fails the checks (it may correct it once)."""
    return (
        "The plan was not shown to the person: "
        + "; ".join(problems)
        + ". Call propose_plan again with a corrected plan, or answer without one."
    )


def plan_bad_references(steps: list[int]) -> str:
    """A step uses the result of a step that will not have run before it."""
    names = ", ".join(f"{{{{step {n}}}}}" for n in steps)
    return f"{names} must name an earlier step of the plan"


#: The question when someone says "go on" after an answer cut at the token limit.
CONTINUE_CUT = (
    "Continue your previous answer from exactly where it stopped. Do not repeat what you "
    "already wrote, and do not start over."
)


#: ``chorus check --llm``: a tiny first request (a connection opened, the model loaded), then
#: the probe whose speed is measured: an answer of one sentence, a few dozen tokens.
MODEL_WARM_UP = "Say OK."
MODEL_PROBE = "In one sentence, say what a team chat bot can do for a busy team."
