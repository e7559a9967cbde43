"""Every string Chorus shows to a person, on any platform, in one place (what the model reads
from Chorus itself is :mod:`bot.prompts`; what only one platform shows is beside its adapter).

Keep them short, friendly and free of internals: no stack traces, hostnames or secrets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from bot.text import plural

__all__ = [
    "EMPTY_MESSAGE",
    "GENERATION_FAILED",
    "EMPTY_ANSWER",
    "REUSED_ANSWER",
    "TRUNCATED_NOTICE",
    "RATE_LIMITED",
    "rate_limited",
    "UNKNOWN_PERSONALITY",
    "PERSONALITY_DISABLED",
    "INTERNAL_ERROR",
    "DEADLINE_PASSED",
    "SLACK_UNREACHABLE",
    "SLACK_UNREACHABLE_HINT",
    "SLACK_REFUSED",
    "ANSWER_CUT",
    "STORAGE_DEGRADED",
    "DEMO_MODEL_NOTE",
    "THINKING",
    "HELP",
    "PLUGINS_USAGE",
    "plugin_auto_disabled",
    "MEMORY_OFF",
    "MEMORY_USAGE",
    "MEMORY_FAILED",
    "REMEMBERED",
    "NOTHING_TO_FORGET",
    "FORGOT",
    "FORGET_ME_CONFIRM",
    "FORGET_ME_FAILED",
    "FORGOTTEN_ME",
    "FORGET_ME_CONFIRM_LINKED",
    "link_code",
    "LINK_PRIVATE_ONLY",
    "LINK_CODE_SHOWN",
    "LINK_BAD_CODE",
    "link_too_many",
    "LINK_SAME_ACCOUNT",
    "LINK_SAME_PLATFORM",
    "LINK_ALREADY",
    "LINK_TAKEN",
    "LINK_PLATFORM_TAKEN",
    "LINK_USAGE",
    "link_confirm",
    "LINK_CONFIRM_PRIVATE",
    "link_nothing_to_confirm",
    "LINKED",
    "LINKING_OFF",
    "LINK_UNAVAILABLE",
    "NOT_LINKED",
    "UNLINKED_HOME",
    "UNLINKED_OTHER",
    "linked_accounts",
    "MEMORY_STATS_REFUSED",
    "PROFILE_FIELD_NAMES",
    "what_i_know",
    "memory_stats",
    "STATS_OVERALL",
    "STATS_REFUSED",
    "STATS_CHART_SENT",
    "STATS_CHART_FAILED",
    "learning_stats",
    "learning_source_line",
    "learning_sources",
    "learning_stats_line",
    "satisfaction_alert",
    "tool_confirmation",
    "PLAN_CHANGES",
    "PLAN_CANCELLED",
    "PLAN_CANNOT_ASK",
    "PLAN_RUNNING",
    "plan_confidence",
    "plan_model_estimate",
    "plan_header",
    "plan_prose_step",
    "plan_ask",
    "plan_invalid",
    "plan_expired",
    "plan_step_done",
    "plan_step_failed",
    "plan_done",
    "plan_failed",
    "proactive_suggestion",
    "proactive_status",
    "PROACTIVE_TASK_STOPPED",
    "PROACTIVE_DECLINES_STOPPED",
    "PROACTIVE_NOT_NOW",
    "PROACTIVE_OFF",
    "PROACTIVE_ON",
    "PROACTIVE_USAGE",
    "AUTONOMY_SET",
    "AUTONOMY_USAGE",
    "WEEKDAY_NAMES",
    "pattern_why_weekly",
    "pattern_why_daily",
    "pattern_why_biweekly",
    "pattern_why_monthly",
    "habit_when",
    "plugin_task_why",
    "unknown_command",
    "NO_PERSONALITY_ENABLED",
    "PERSONALITIES_HEADER",
    "PERSONALITY_LINE",
    "USE_USAGE",
    "USE_UNKNOWN_PERSON",
    "USE_RESET",
    "USE_SET",
    "ASK_WHAT",
    "WHOAMI",
    "WHOAMI_CHOSEN",
    "WHOAMI_PICKED",
    "PLUGINS_REFUSED",
    "PLUGIN_SWITCHED",
    "PLUGINS_HEADER",
    "PLUGIN_LINE",
    "UNBOUND",
    "BOUND",
    "PREFERENCES_OFF",
    "NOTHING_LEARNED",
    "LEARNED_HEADER",
    "LEARNED_LINE",
    "LEARNED_FROM_YOU",
    "LEARNED_FROM_TEAM",
    "LEARNED_WHO",
    "LEARNED_LABELS",
    "RESET_UNKNOWN",
    "RESET_DONE",
    "PROACTIVE_CHOICES",
    "PROACTIVE_SUGGEST_ONLY",
    "STARTER_ASK",
    "ASSISTANT_GREETING",
    "ASSISTANT_STARTERS_TITLE",
    "ASSISTANT_THINKING",
    "model_probe",
    "ADMIN_REFUSED",
    "ADMIN_USAGE",
    "ADMIN_PRIVATE_ONLY",
    "ADMIN_NO_SERVER",
    "ADMIN_LINK_UNAVAILABLE",
    "ADMIN_LINK",
    "ADMIN_PAGE_LINK_USED",
    "ADMIN_PAGE_KEY_REFUSED",
    "ADMIN_PAGE_NO_KEYS",
    "ADMIN_PAGE_FORM_EXPIRED",
    "ADMIN_PAGE_LOGGED_OUT",
    "ADMIN_PAGE_SESSION_ENDED",
    "ADMIN_PAGE_CHANNEL_NEEDED",
    "ADMIN_PAGE_CHANNEL_TOO_LONG",
    "ADMIN_PAGE_UNAVAILABLE",
    "ADMIN_PAGE_FAILED",
    "ADMIN_PAGE_BAD_REQUEST",
    "admin_page_switched",
    "admin_page_bound",
]

EMPTY_MESSAGE = (
    "I didn't catch a question there. Write me a message, or say `help` to see what I can do."
)
GENERATION_FAILED = (
    "Sorry, I couldn't reach my language model just now, so I have no answer for you. "
    "Please try again in a moment."
)
EMPTY_ANSWER = "Sorry, I came up empty on that one. Could you rephrase it?"
#: Under an answer reused from the answer cache (rated 👍 before, not written anew).
REUSED_ANSWER = (
    "_(This answer was rated 👍 when the same question came up before. If it is out of date, "
    "react 👎 and I'll write a fresh one next time.)_"
)
TRUNCATED_NOTICE = "_(Your message was very long, so I read only the first {limit:,} characters.)_"
RATE_LIMITED = "You're sending messages faster than I can keep up with. I'll answer again {when}."
UNKNOWN_PERSONALITY = "I don't know a personality called `{name}`. Available: {available}."
PERSONALITY_DISABLED = "`{name}` is not enabled here. Available: {available}."
INTERNAL_ERROR = (
    "Sorry, something went wrong on my side while answering. "
    "The team running me has been notified in the logs; please try again."
)
ANSWER_CUT = "_(I ran out of room there. Say `go on` and I'll continue.)_"
DEADLINE_PASSED = (
    "Sorry, I couldn't answer that in time: something I depend on is slow right now. "
    "Please try again in a minute."
)

STORAGE_DEGRADED = "_(I couldn't save this conversation just now, so I may not remember it.)_"
#: Under the first answer the embedded model gives a person (bot.pipeline.demo_note).
DEMO_MODEL_NOTE = (
    "_(I'm answering with the small model built into Chorus, which is demo quality. For real "
    'answers, point Chorus at a better model in one line: see "Language models" in the '
    "README.)_"
)
#: The console's line while an answer is made (in a terminal; the answer replaces it).
THINKING = "thinking…"

HELP = """\
Talk to me in plain language. Things you can also do:
• `ask NAME your question` – ask one personality directly (e.g. `ask data_analyst …`)
• `use NAME` – keep talking to one personality (`use default` to go back)
• `personalities` – list who is available here
• react 👍 / 👎 to my answers so I learn what works for you; `what have you learned about me?`
• say how to answer (`keep answers short`, `no emoji`, `use bullet points`, `be more formal`) \
and I keep to it until you say otherwise; `answer however you like` drops it
• `remember …` / `forget …` – tell me what to keep or drop; `what do you know about me?`
• `forget me` – delete everything I know about you
• `link` – one profile and memory for your Slack and Discord accounts: `link` on one gives \
a code, `link CODE` then `link confirm` on the other joins them (`unlink` splits them)
• `stop suggestions` – no more proactive suggestions (`proactive on`, `proactive status`); \
react ✅ to a suggestion to get it, 🔕 to stop that one
• `set my autonomy to low|medium|high` – how much I may do for you without asking"""


def unknown_command(name: str) -> str:
    return f"Unknown command `{name}`.\n\n{HELP}"


NO_PERSONALITY_ENABLED = (
    "No personality is enabled here. An admin can enable one with `plugins enable`."
)
PERSONALITIES_HEADER = "Personalities available here:"
PERSONALITY_LINE = "• {emoji} *{display_name}* `{name}`{default}: {description}"
USE_USAGE = "Usage: `use NAME` (or `use default`)."
USE_UNKNOWN_PERSON = "I don't know you yet; say hello first."
USE_RESET = "OK, I'll pick the best personality for each message again."
USE_SET = "OK, you're now talking to {display_name}. Say `use default` to switch back."
ASK_WHAT = "What would you like to ask {display_name}?"
#: A starter offered for a personality (bot.starters): picking it sends this as the person.
STARTER_ASK = "ask {name} what can you help me with?"
#: Where a platform greets a fresh conversation (Slack's assistant container), above starters.
ASSISTANT_GREETING = "Hi! Ask me anything, or pick one of the suggestions to start."
ASSISTANT_STARTERS_TITLE = "Try one of these"
#: Shown after the bot's name while an answer is written ("Chorus is thinking…").
ASSISTANT_THINKING = "is thinking…"
WHOAMI = "You are {name} ({actor}), {role} of this workspace. {talking}"
WHOAMI_CHOSEN = "You've chosen `{personality}`."
WHOAMI_PICKED = "I pick a personality for you."
PLUGINS_REFUSED = "Sorry, only workspace admins can manage plugins. Ask an admin to do it for you."
PLUGIN_SWITCHED = "`{plugin}` is now {state} {where}."
PLUGINS_HEADER = "Plugins:"
PLUGIN_LINE = "• `{plugin}` ({mark}){offers}"
UNBOUND = "#{channel} has no personality of its own any more."
BOUND = "`{personality}` now answers in #{channel} unless someone asks for another."


PLUGINS_USAGE = (
    "Usage: `plugins list`, `plugins enable|disable NAME [#channel]`, "
    "`plugins bind NAME [#channel]` (that personality answers there by default), "
    "`plugins unbind [#channel]`."
)


PREFERENCES_OFF = "Preference learning is switched off here, so I haven't learned any."
NOTHING_LEARNED = (
    "I haven't learned any preferences of yours yet. React 👍 or 👎 to my answers and I'll "
    "adapt how I answer you. (For what I remember about you, ask `what do you know about me?`)"
)
LEARNED_HEADER = (
    "Here is what I've learned from your reactions (for what I remember about you, ask "
    "`what do you know about me?`):"
)
#: One learned preference in "what have you learned about me?": the option the person most
#: likely prefers, the probability of that, and where the evidence comes from.
LEARNED_LINE = "{label}: {option} ({sure:.0%} sure; {source}) — `reset my {reset} preference`"
LEARNED_FROM_YOU = "from {votes:.1f} of your ratings"
LEARNED_FROM_TEAM = "from your team's ratings"
LEARNED_WHO = "Who answers {kind} questions"
LEARNED_LABELS = {
    "length": "Answer length",
    "formality": "Tone",
    "structure": "Layout",
    "emoji": "Emoji",
}
RESET_UNKNOWN = "I can't reset a `{what}` preference. I learn these: {options}."
RESET_DONE = (
    "Done: I've forgotten {what}: what you had asked for, and what I had learned from your "
    "reactions."
)

#: What someone asked for, per style decision and option: in the note that confirms it, in
#: "what have you learned about me?" and, for the model, in the style of each answer.
REQUESTED_OPTIONS = {
    "length": {
        "short": "short answers",
        "medium": "medium-length answers",
        "long": "detailed answers",
    },
    "formality": {
        "casual": "a casual tone",
        "neutral": "a neutral tone",
        "formal": "a formal tone",
    },
    "structure": {
        "prose": "prose, no bullet points",
        "bullets": "bullet points",
        "mixed": "prose with bullet points for lists",
    },
    "emoji": {"on": "emoji", "off": "no emoji"},
}


def requested_words(options: Mapping[str, str]) -> str:
    """What someone asked for, in words and in the usual order: "short answers, no emoji"."""
    order = list(REQUESTED_OPTIONS)
    return ", ".join(
        REQUESTED_OPTIONS[d][o]
        for d, o in sorted(options.items(), key=lambda item: order.index(item[0]))
        if o in REQUESTED_OPTIONS.get(d, {})
    )


#: Added to the answer that follows a request (or a changed one).
STYLE_NOTED = (
    "_Noted: {what} from now on. Say “answer however you like” to go back to what I learn "
    "from your reactions._"
)
STYLE_CLEARED = (
    "OK: I'll no longer keep to what you asked for ({what}); I'll answer as I learn from your "
    "reactions."
)
NOTHING_REQUESTED = (
    "You haven't asked me to answer in any particular way, so I already answer as I learn from "
    "your reactions."
)
#: In "what have you learned about me?": a decision the person asked for, and (if any) what
#: their ratings say beneath it.
REQUESTED_LINE = "{label}: {option} (you asked for it)"
REQUESTED_LEARNED = " — learned from {source}: {option} ({sure:.0%} sure)"
REQUESTED_FROM_YOU = "your ratings"
REQUESTED_FROM_TEAM = "your team's ratings"
REQUESTED_HEADER = (
    "Here is how I answer you: what you asked for, and what I've learned from your reactions "
    "(for what I remember about you, ask `what do you know about me?`):"
)
REQUESTED_FOOTER = (
    "I keep to what you asked for until you say otherwise; `answer however you like` drops it, "
    "`reset my length preference` (or formality, structure, emoji) forgets both for one."
)
REQUESTED_LEARNING_OFF = (
    "Preference learning is switched off here, so I learn nothing from your reactions; I still "
    "keep to what you asked for:"
)


def plugin_auto_disabled(plugin: str, failures: int) -> str:
    """Notice for admins when a plugin is switched off after repeated failures."""
    return (
        f"The plugin `{plugin}` failed {plural(failures, 'time')} in a row and has been disabled "
        f"for this workspace. Re-enable it with `chorus plugins enable {plugin}` "
        "once it is fixed."
    )


# -- memory ---------------------------------------------------------------------------------------

MEMORY_OFF = (
    "Memory is switched off here, so I don't learn or keep anything about you between "
    "conversations."
)
MEMORY_USAGE = (
    "Usage: `remember SOMETHING`, `forget SOMETHING` (words, or an id from "
    "`what do you know about me`), `forget me`, `memory stats` (admins)."
)
MEMORY_FAILED = "Sorry, I couldn't reach my memory just now. Please try again in a moment."
REMEMBERED = "Got it, I'll remember: {text}"
NOTHING_TO_FORGET = (
    "I couldn't find anything about “{words}” in what I remember about you. "
    "Say `what do you know about me` to see it all."
)
FORGOT = "Done, I've forgotten:"
FORGET_ME_CONFIRM = (
    "This deletes everything I know about you here: your profile, everything I remember, "
    "our conversations and your ratings. It can't be undone. "
    "To go ahead, say `forget me confirm`."
)
FORGET_ME_FAILED = (
    "Sorry, I couldn't finish deleting your data just now. Please try again; "
    "nothing new was learned in the meantime."
)
FORGOTTEN_ME = (
    "Done. I've deleted your profile, everything I remembered about you, our conversations "
    "and your ratings. If you write to me again, I'll start from scratch."
)
MEMORY_STATS_REFUSED = "Sorry, only workspace admins can see memory statistics."

# -- identity linking (bot.identity) ---------------------------------------------------------

FORGET_ME_CONFIRM_LINKED = (
    "This deletes everything I know about you on all {accounts} of your linked accounts: your "
    "profile, everything I remember, our conversations and your ratings, on every platform. "
    "It can't be undone. To go ahead, say `forget me confirm`. (To keep your other account, "
    "say `unlink` first.)"
)


def rate_limited(wait_s: float) -> str:
    """:data:`RATE_LIMITED` for a block that ends in ``wait_s`` seconds (rounded up to five)."""
    if wait_s <= 5:
        when = "in a few seconds"
    elif wait_s <= 55:
        when = f"in about {5 * math.ceil(wait_s / 5)} seconds"
    else:
        when = "in about a minute"
    return RATE_LIMITED.format(when=when)


def link_code(code: str, minutes: int) -> str:
    """The answer to ``link``: the one-time code, valid ``minutes``."""
    return (
        f"Your one-time code: `{code}`\n"
        f"On your account on the other platform, send me `/chorus link {code}` (or `link {code}` "
        f"in a direct message) within {plural(minutes, 'minute')}, then confirm there with "
        "`link confirm`. It works once. Never share it: whoever enters it and confirms gets "
        "this account's profile and memories."
    )


LINK_PRIVATE_ONLY = (
    "Let's do that privately: send me `link` in a direct message, or use `/chorus link` "
    "(only you see the answer)."
)
LINK_CODE_SHOWN = (
    "Codes only work where only you see them: in a direct message or with "
    "`/chorus link CODE`. If that was a real code, it no longer works: ask for a new one with "
    "`/chorus link` on your other account."
)
LINK_BAD_CODE = (
    "That code doesn't work: it may be mistyped, already used or expired. "
    "Ask for a new one with `/chorus link` on your other account."
)


def link_too_many(minutes: int) -> str:
    return f"Too many codes tried. Please try again in {plural(minutes, 'minute')}."


LINK_SAME_ACCOUNT = (
    "That code was made by this account. Enter it on your *other* account to link the two."
)
LINK_SAME_PLATFORM = (
    "That code was made by an account on {platform} too. Linking joins your accounts on "
    "different platforms: enter the code on the other platform."
)
LINK_ALREADY = "These two accounts are already linked."
LINK_TAKEN = (
    "This account is already linked to another one. Say `unlink` here first, then link again."
)
LINK_PLATFORM_TAKEN = (
    "The account that made the code already has a {platform} account linked. Unlink that one first."
)
LINK_USAGE = (
    "Usage: `link` (get a one-time code), `link CODE` (enter it on your other account), "
    "`link confirm` (link them, once you've checked whose account it is), `unlink` (split "
    "them again)."
)


def _shown(text: str, limit: int = 64) -> str:
    """A name someone else chose, safe to show in a code span: one line, no backticks, at most
    ``limit`` characters (so it cannot pose as part of the message around it)."""
    flat = " ".join(text.replace("`", "'").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def link_confirm(
    *, platform: str, name: str | None, user: str, workspace: str, others: int, minutes: int
) -> str:
    """The answer to ``link CODE``: whose account entering the code would join (the issuer's
    platform, display name, user id and workspace), what that gives away, and how to go on."""
    user_id = f"user id `{_shown(user)}`"
    who = f"`{_shown(name)}` ({user_id})" if name else f"with {user_id} (no display name)"
    more, they, are = "", "that account", "is"
    if others:
        more = f", together with the {others} other account{'s' if others > 1 else ''} linked to it"
        they, are = "those accounts", "are"
    return (
        f"You are about to join the **{platform}** account {who} in the {platform} workspace "
        f"`{_shown(workspace)}`{more}. This lets {they} read your profile, your memories and "
        "what I learned about you, and everything I learn about you from now on. Only go "
        f"ahead if {they} {are} yours: if someone asked you to enter their code, don't.\n"
        f"To go ahead, confirm where you entered the code, within {plural(minutes, 'minute')}: "
        "`/chorus link confirm` (or `link confirm` in a direct message). Otherwise ignore "
        "this: nothing is linked."
    )


LINK_CONFIRM_PRIVATE = (
    "Let's do that privately: say `link confirm` in a direct message, or use "
    "`/chorus link confirm` (only you see the answer), from the account that entered the code."
)


def link_nothing_to_confirm(minutes: int) -> str:
    return (
        "There's no link waiting for your confirmation here. Enter a code with "
        f"`/chorus link CODE` first, then confirm where you entered it within "
        f"{plural(minutes, 'minute')}."
    )


LINKED = (
    "Linked. Your {home} account and this {here} account are now one person to me: your "
    "profile, what I remember about you and your learned preferences follow you on both. Team "
    "knowledge stays in each workspace. Say `unlink` to split them again."
)
LINKING_OFF = "Linking accounts is turned off."
LINK_UNAVAILABLE = "Linking isn't available right now. Please try again in a minute."
NOT_LINKED = "This account isn't linked to any other. Say `link` to get a code."
UNLINKED_HOME = (
    "Unlinked. This account keeps everything, including what I learned while linked; your "
    "{others} account is back to what it had before linking."
)
UNLINKED_OTHER = (
    "Unlinked. This account is back to what it had before linking; what I learned while "
    "linked stays with your {home} account."
)


def linked_accounts(accounts: list[tuple[str, str | None, bool, bool]]) -> str:
    """The ``whoami`` line of a linked person: (platform, name, is home, is this one)."""
    parts = []
    for platform, name, home, this in accounts:
        notes = [n for n, on in (("home", home), ("this one", this)) if on]
        label = f"{platform} ({name})" if name else platform
        parts.append(label + (f" [{', '.join(notes)}]" if notes else ""))
    return "Linked accounts: " + ", ".join(parts) + ". Say `unlink` to split them."


#: How profile fields are named to people.
PROFILE_FIELD_NAMES = {
    "company": "Company",
    "role": "Role",
    "industry": "Industry",
    "communication_style": "Communication style",
    "projects": "Projects",
    "goals": "Goals",
    "tools": "Tools",
    "timezone": "Timezone",
}


def what_i_know(
    *,
    profile: list[tuple[str, str]],
    team: list[tuple[str, str]],
    memories: list[tuple[str, str, datetime]],
    more: int,
    memory_off: bool,
) -> str:
    """The answer to "what do you know about me?": profile, team profile, memories by id."""
    lines: list[str] = [MEMORY_OFF, ""] if memory_off else []
    if not profile and not memories:
        lines.append("I don't know anything about you yet.")
    else:
        lines.append("Here's what I know about you.")
    if profile:
        lines += ["", "*Your profile*", *(f"• {name}: {value}" for name, value in profile)]
    if team:
        lines += [
            "",
            "*Your team* (shared with everyone in this workspace)",
            *(f"• {name}: {value}" for name, value in team),
        ]
    if memories:
        lines += ["", "*What I remember*, newest first"]
        lines += [f"• `{sid}` {text} ({at:%Y-%m-%d})" for sid, text, at in memories]
        if more:
            lines.append(f"…and {more} more.")
    if profile or memories:
        lines += [
            "",
            "Say `forget ID` or `forget SOME WORDS` to remove something, "
            "or `forget me` to delete everything.",
        ]
    return "\n".join(lines)


def memory_stats(
    people: list[tuple[str, str, int, int, int]], *, team_memories: int, team_fields: int
) -> str:
    """Counts per person for admins (never contents): (name, id, memories, profile fields,
    interactions)."""
    lines = ["Memory in this workspace (counts only):"]
    for name, uid, memories, fields, interactions in people:
        lines.append(
            f"• {name} ({uid}): {plural(memories, 'memory')}, "
            f"{plural(fields, 'profile field')}, {plural(interactions, 'interaction')}"
        )
    lines.append(
        f"• team: {plural(team_memories, 'memory')}, {plural(team_fields, 'profile field')}"
    )
    return "\n".join(lines)


# -- learning: stats and self-checks ---------------------------------------------------------

STATS_OVERALL = "*All personalities*"
STATS_REFUSED = "Sorry, only workspace admins can see learning statistics."
STATS_CHART_SENT = "_I've sent you the chart in a direct message._"
STATS_CHART_FAILED = "_(I couldn't send you the chart just now.)_"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def learning_stats_line(
    label: str,
    *,
    interactions: int,
    up: int,
    down: int,
    satisfaction: float | None,
    reuse_rate: float,
    patterns: int,
    memories: int,
) -> str:
    """One personality's figures in ``stats``."""
    return (
        f"• {label}: {plural(interactions, 'answer')}, {up} 👍 / {down} 👎, "
        f"satisfaction {_percent(satisfaction)}, reused {_percent(reuse_rate)}, "
        f"{plural(patterns, 'pattern')} learned, {plural(memories, 'memory')}"
    )


def learning_stats(lines: list[str], overall: str, *, shared_memories: int) -> str:
    """The ``stats`` answer for admins: one line per personality, then the totals."""
    if not lines:
        return "Nothing to show yet: nobody has talked to me here."
    return "\n".join(
        [
            "How I'm learning here (satisfaction = share of 👍, the asker's counting most):",
            *lines,
            overall,
            f"• memories shared by every personality: {shared_memories}",
        ]
    )


def learning_source_line(
    personality: str, prompt_version: str, engine: str, satisfaction: float | None, ratings: int
) -> str:
    """One source (prompt version × model) of a personality's answers in ``stats``."""
    return (
        f"• `{personality}` prompt {prompt_version} · {engine}: "
        f"{_percent(satisfaction)} of {plural(ratings, 'rating')}"
    )


def learning_sources(lines: list[str]) -> str:
    """The ``stats`` section comparing what produced a personality's answers."""
    return "\n".join(["Where a personality answered in several ways (prompt × model):", *lines])


def satisfaction_alert(
    subject: str,
    satisfaction: float,
    ratings: int,
    threshold: float,
    dataset: str | None,
    *,
    contents: str = "its well-rated answers",
    examples: int | None = None,
) -> str:
    """Notice for admins when a personality's or a person's satisfaction drops (once);
    ``contents`` says what the data set at ``dataset`` holds, ``examples`` how many."""
    text = (
        f"Satisfaction with {subject} has dropped to {satisfaction:.0%} over the last "
        f"{plural(ratings, 'rating')} (the alert is below {threshold:.0%}). "
        "I'll tell you again only after it has recovered."
    )
    if dataset:
        count = "" if examples is None else f" ({plural(examples, 'example')})"
        text += f" A training data set of {contents}{count} is in {dataset}."
    return text


# -- proactive suggestions: why a habit was suggested ("why am I seeing this") ---------------

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def pattern_why_weekly(
    request: str, *, seen: int, out_of: int, weekday: int, time: str, zone: str
) -> str:
    """Why a weekly habit is suggested: seen on ``seen`` of the last ``out_of`` weekdays."""
    day = WEEKDAY_NAMES[weekday] + "s"
    last = f"the last {out_of} {day}" if out_of > 1 else f"the last {out_of} {day[:-1]}"
    return (
        f'You asked me for "{request}" on {seen} of {last} around {time} ({zone}), '
        "so I offer it a little before then."
    )


def _days(weekdays: tuple[int, ...]) -> str:
    if len(weekdays) == 7:
        return "every day"
    if weekdays == (0, 1, 2, 3, 4):
        return "on weekdays"
    names = [WEEKDAY_NAMES[d] + "s" for d in weekdays]
    return "on " + (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0])


def pattern_why_daily(
    request: str, *, days: int, weeks: int, weekdays: tuple[int, ...], time: str, zone: str
) -> str:
    """Why a daily habit is suggested: seen on ``days`` days over ``weeks`` weeks, usually on
    ``weekdays`` (0 = Monday)."""
    span = plural(weeks, "week") if weeks != 1 else "week"
    return (
        f'You asked me for "{request}" on {plural(days, "day")} over the last {span}, '
        f"{_days(weekdays)} around {time} ({zone}), so I offer it a little before then."
    )


def pattern_why_biweekly(
    request: str, *, seen: int, out_of: int, weekday: int, time: str, zone: str
) -> str:
    """Why an every-other-week habit is suggested: seen on ``seen`` of its last ``out_of``
    every-other weekdays."""
    day = WEEKDAY_NAMES[weekday]
    return (
        f'You asked me for "{request}" every other {day} ({seen} of the last {out_of}) '
        f"around {time} ({zone}), so I offer it a little before then, every other {day}."
    )


_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}


def _day_of_month(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def habit_when(
    cadence: str,
    *,
    weekday: int | None,
    days: tuple[int, ...],
    nth: int | None,
    day_of_month: int | None,
) -> str:
    """A habit's cadence in words: "every Monday", "every other Friday", "the first Monday of
    each month", "the 1st of each month", "on weekdays"."""
    if cadence == "monthly":
        if nth is not None and weekday is not None:
            return f"the {_ORDINALS[nth]} {WEEKDAY_NAMES[weekday]} of each month"
        return f"the {_day_of_month(day_of_month or 1)} of each month"
    if cadence == "biweekly" and weekday is not None:
        return f"every other {WEEKDAY_NAMES[weekday]}"
    if cadence == "weekly" and weekday is not None:
        return f"every {WEEKDAY_NAMES[weekday]}"
    return _days(days)


def pattern_why_monthly(
    request: str, *, seen: int, out_of: int, when: str, time: str, zone: str
) -> str:
    """Why a monthly habit is suggested: asked ``when`` ("the first Monday of each month") in
    ``seen`` of the last ``out_of`` months."""
    months = plural(out_of, "month") if out_of != 1 else "month"
    return (
        f'You asked me for "{request}" on {when} ({seen} of the last {months}) around {time} '
        f"({zone}), so I offer it a little before then."
    )


def plugin_task_why(
    plugin: str, *, weekdays: tuple[int, ...] | None, time: str | None, zone: str
) -> str:
    """Why a plugin's task is suggested: ``plugin`` offers it on a schedule, read as
    ``weekdays`` (0 = Monday) at ``time`` in ``zone`` when it is that simple."""
    when = f" {_days(weekdays)} at {time} ({zone})" if weekdays and time else ""
    return f"{plugin} offers this{when} to people who work with it."


# -- proactive suggestions: what people read -------------------------------------------------

#: The reactions a suggestion offers, as the person reads them.
PROACTIVE_CHOICES = "✅ to run, 🔕 to stop these."
PROACTIVE_SUGGEST_ONLY = (
    "_(Your autonomy is set to low, so ✅ only gets you this answer: I won't use any tools "
    "or take any action.)_"
)
PROACTIVE_TASK_STOPPED = (
    "OK, I won't suggest {description} any more. To stop all my suggestions, say "
    "`stop suggestions` (or `/chorus proactive off`)."
)
PROACTIVE_DECLINES_STOPPED = (
    "OK. You've said no to {description} a few times, so I won't suggest it any more."
)
PROACTIVE_NOT_NOW = "OK, not this time."
PROACTIVE_OFF = (
    "Done: I won't send you any more suggestions. Say `proactive on` (`/chorus proactive on`) "
    "if you want them back."
)
PROACTIVE_ON = (
    "OK, I'll offer help again at the moments you usually need it: at most {per_day} a day, "
    "never between {quiet_start} and {quiet_end}{weekends}. React ✅ to get one, 🔕 to stop it."
)
PROACTIVE_USAGE = (
    "Usage: `proactive off` (no more suggestions), `proactive on`, `proactive status`."
)
AUTONOMY_SET = {
    "low": (
        "Your autonomy is now low: I only suggest. A ✅ on a suggestion gets you the answer, "
        "nothing more, and I ask before any tool call beyond reading."
    ),
    "medium": "Your autonomy is now medium: I ask before any tool call that acts outside Chorus.",
    "high": (
        "Your autonomy is now high: I use tools without asking, within the limits your admins set."
    ),
}
AUTONOMY_USAGE = "Usage: `set my autonomy to low|medium|high` (`/chorus autonomy low`)."


def proactive_suggestion(
    *, when: str, description: str, why: str, habit: bool, suggest_only: bool
) -> str:
    """A proactive suggestion: "It's Monday 9:00 and you usually ask me for …"."""
    if habit:
        first = f"It's {when} and you usually ask me for {description}. Want it now?"
    else:
        first = f"It's {when}. Would you like {description}?"
    lines = [first]
    if why:
        lines.append(f"_Why you're seeing this: {why}_")
    if suggest_only:
        lines.append(PROACTIVE_SUGGEST_ONLY)
    lines.append(PROACTIVE_CHOICES)
    return "\n".join(lines)


def proactive_status(
    *, enabled: bool, opted_out: bool, autonomy: str, active: list[str], stopped: list[str]
) -> str:
    """The answer to ``proactive status``: on or off, autonomy, what may be suggested."""
    if not enabled:
        head = "Proactive suggestions are switched off here by the people running me."
    elif opted_out:
        head = "You've switched my suggestions off. Say `proactive on` to get them again."
    else:
        head = "My suggestions are on for you. Say `stop suggestions` to switch them off."
    lines = [head, f"Your autonomy: {autonomy}."]
    if active:
        lines += ["", "*What I may suggest*", *(f"• {item}" for item in active)]
    elif enabled and not opted_out:
        lines.append("I haven't noticed a habit of yours to suggest yet.")
    if stopped:
        lines += ["", "*Stopped*", *(f"• {item}" for item in stopped)]
    return "\n".join(lines)


# -- platforms that cannot be reached --------------------------------------------------------

SLACK_UNREACHABLE = "cannot reach Slack at {url}: {error}"
SLACK_UNREACHABLE_HINT = "check the network, a proxy, and slack.api_url (CHORUS_SLACK__API_URL)"
SLACK_REFUSED = (
    "Slack refused the bot token ({error}): check SLACK_BOT_TOKEN (README, Slack; `chorus check`)"
)


# -- tools ---------------------------------------------------------------------------------------


def tool_confirmation(action: str, arguments: str, seconds: float) -> str:
    """Asks the person who made the request before a tool call runs."""
    if seconds < 120:
        within = f"{seconds:g} second" + ("" if seconds == 1 else "s")
    else:
        within = plural(round(seconds / 60), "minute")
    args = f" with {arguments}" if arguments else ""
    return (
        f"I'm about to {action}{args}. React ✅ to run it or ❌ to cancel "
        f"(only you can answer; this expires in {within})."
    )


# -- plans ---------------------------------------------------------------------------------------

#: How each side effect is described in a plan (from the tool's declaration, never the model's).
PLAN_CHANGES = {
    "read_only": "changes nothing",
    "writes_internal": "changes data inside Chorus",
    "acts_outside": "acts outside Chorus",
}
PLAN_CANCELLED = "Plan cancelled (❌); nothing was run."


PLAN_CANNOT_ASK = "I drafted a plan but cannot ask for your approval here, so nothing was run."


def plan_confidence(percent: int, checked: int, ok: int, calls: int, kind: str) -> str:
    """The confidence line: the figure and where it comes from."""
    steps = f"all {checked} steps checked" if checked != 1 else "the step checked"
    if calls:
        history = (
            f"{ok} of {plural(calls, 'call')} of these tools worked for {kind} requests "
            "in your team"
        )
    else:
        history = f"no calls of these tools for {kind} requests in your team yet"
    return f"confidence {percent}%: {steps}; {history}"


def plan_model_estimate(percent: int) -> str:
    return f"; the model's own estimate {percent}%"


def plan_header(goal: str, steps: int) -> str:
    return f"Plan: {goal} ({steps} step{'' if steps == 1 else 's'})"


def plan_prose_step(index: int, total: int, text: str) -> str:
    """One step as a sentence of a plan shown as prose."""
    if total == 1:
        return f"I'll {text}."
    if index == 1:
        return f"First I'll {text}."
    if index == total:
        return f"Finally I'll {text}."
    return f"Then I'll {text}."


def plan_ask(seconds: float) -> str:
    """How to answer a shown plan."""
    if seconds < 120:
        within = f"{seconds:g} second" + ("" if seconds == 1 else "s")
    else:
        within = plural(round(seconds / 60), "minute")
    return f"React ✅ to run it or ❌ to cancel (only you can answer; this expires in {within})."


PLAN_RUNNING = "Only reading, so I'm running it now."


def plan_invalid(problems: list[str]) -> str:
    """A drafted plan refused before it was shown."""
    listed = "\n".join(f"- {p}" for p in problems)
    return f"I drafted a plan but it cannot run as written, so I did not show it:\n{listed}"


def plan_expired(seconds: float) -> str:
    return f"No ✅ within {seconds:g} seconds, so the plan expired; nothing was run."


def plan_step_done(index: int, total: int, description: str) -> str:
    return f"Step {index}/{total} done: {description}"


def plan_step_failed(index: int, total: int, description: str, why: str) -> str:
    """A step that failed: which, why, and that the plan stopped."""
    left = total - index
    rest = (
        ""
        if left == 0
        else f" The plan stopped here; {left} later step{'' if left == 1 else 's'} did not run."
    )
    return f"Step {index}/{total} failed: {description}: {why}.{rest}"


def plan_done(goal: str, total: int) -> str:
    """The plain summary of a plan that ran to the end (when no model can summarise it)."""
    return f"Done: {goal} (all {total} step{'' if total == 1 else 's'} ran)."


def plan_failed(goal: str, index: int, total: int, why: str) -> str:
    """The plain summary of a plan stopped by a failed step."""
    return f"The plan ({goal}) stopped at step {index}/{total}: {why}."


def model_probe(
    what: str, tokens: int, seconds: float, first_s: float, sentence: str, *, estimated: bool
) -> str:
    """``chorus check --llm``: which model answers and how fast (completion tokens per second
    of the timed probe; ``estimated`` when the server did not count them)."""
    rate = tokens / seconds if seconds > 0 else 0.0
    about = "about " if estimated else ""
    said = " ".join(sentence.split())
    if len(said) > 80:
        said = said[:79].rstrip() + "…"
    return (
        f"{what} answers at {about}{rate:.1f} tokens/s ({about}{plural(tokens, 'token')} in "
        f"{seconds:.1f} s; "
        f'first request {first_s:.1f} s): "{said}"'
    )


# -- the admin page (adapters/admin) and `/chorus admin` -------------------------------------

ADMIN_REFUSED = "Sorry, only workspace admins can open the admin page."
ADMIN_USAGE = "Usage: `/chorus admin` (I answer with a one-time link to the admin page)."
ADMIN_PRIVATE_ONLY = "Let's do that privately: use `/chorus admin` (only you see the answer)."
ADMIN_NO_SERVER = (
    "The admin page is served by `chorus run` (this process has no HTTP server). Set "
    "`http.public_url` to where people reach it, and ask again."
)
ADMIN_LINK_UNAVAILABLE = "I can't make a login link just now; please try again in a minute."
ADMIN_LINK = (
    "Your one-time link to this workspace's admin page (it works once, for {minutes} "
    "minutes; never share it):\n{url}"
)
ADMIN_PAGE_LINK_USED = (
    "This login link has been used or has expired. Ask for a new one with `/chorus admin`."
)
ADMIN_PAGE_KEY_REFUSED = "That is not an admin API key (with the admin scope) of a workspace."
ADMIN_PAGE_NO_KEYS = (
    "This server takes no API keys; ask for a one-time link with `/chorus admin` in Slack or "
    "Discord."
)
ADMIN_PAGE_FORM_EXPIRED = (
    "That form was out of date or did not come from this page, so nothing was changed. "
    "Please try again."
)
ADMIN_PAGE_LOGGED_OUT = "You are logged out."
ADMIN_PAGE_SESSION_ENDED = "Your login has ended; please log in again."
ADMIN_PAGE_CHANNEL_NEEDED = "Name the channel to bind."
ADMIN_PAGE_CHANNEL_TOO_LONG = "A channel name has at most 128 characters."
ADMIN_PAGE_UNAVAILABLE = (
    "The database or Redis is not answering just now, so that could not be done. Please try "
    "again in a minute."
)

ADMIN_PAGE_FAILED = (
    "Something went wrong on our side, and it has been logged. Please try again; if it keeps "
    "happening, tell whoever runs Chorus."
)

ADMIN_PAGE_BAD_REQUEST = "That request could not be read, so nothing was changed."


def admin_page_switched(plugin: str, enabled: bool, channel: str) -> str:
    where = f"in #{channel}" if channel else "in the whole workspace"
    return f"{plugin} is now {'enabled' if enabled else 'disabled'} {where}."


def admin_page_bound(channel: str, personality: str | None) -> str:
    if personality is None:
        return f"#{channel} has no personality of its own any more."
    return f"{personality} now answers in #{channel} unless someone asks for another."
