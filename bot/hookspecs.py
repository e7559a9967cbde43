"""The plugin API: every hook a Chorus plugin can implement.

Implement a hook with the ``bot.hookimpl`` marker on a function of the same name, in a module
registered through the ``chorus.plugins`` entry-point group, the built-in ``plugins/``
package or a drop-in file listed in ``plugins.paths``. A hook may be ``def`` or
``async def``; the host awaits results itself. Hooks are always called with keyword
arguments, so an implementation may accept only the parameters it needs.

Each plugin's call is isolated: if it raises or runs past ``dispatcher.plugin_timeout_s``,
its result is dropped, the failure is logged with the plugin's name, and the reply goes on.
A plugin that keeps failing is disabled for that tenant with an audit entry.

The reference for each hook, with examples, is ``docs/plugin_hooks.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import pluggy

from bot.context import Context
from bot.events import FeedbackInfo, InteractionInfo, Message, Reply, UserInfo
from bot.personality import Personality, ProactiveTask, Tool

if TYPE_CHECKING:
    from pydantic import BaseModel

    from bot.commands.base import CommandGroup
    from bot.llm.base import LLMProvider
    from bot.memory.service import MemoryService
    from bot.settings import Settings
    from bot.storage.db import Database

__all__ = ["App", "PROJECT_NAME", "PUBLIC_API", "hookspec", "hookimpl", "only_for"]

#: The modules a plugin may import from (and what a hook hands it): the plugin API. Anything
#: else in ``bot`` may change without notice (a test holds the built-in plugins to this).
PUBLIC_API = (
    "bot",  # hookimpl, only_for
    "bot.hookspecs",
    "bot.events",
    "bot.personality",
    "bot.context",
    "bot.commands",
    "bot.errors",
    "bot.builtin_tools",  # the SQL, knowledge base and calendar tools, and their settings
)


class App(Protocol):
    """What a plugin is handed at start-up and shutdown: the running Chorus, as far as a
    plugin may use it."""

    #: Every setting (read-only); a plugin's own are ``plugins.<name>`` (see
    #: ``docs/plugin_hooks.md``, "Configuration").
    settings: Settings
    #: The SQL database (``db.run(fn)`` runs ``fn(session)`` in a worker thread).
    db: Database
    #: Long-term memory (its ``store`` indexes and searches team and personal memories).
    memory: MemoryService


PROJECT_NAME = "chorus"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

F = TypeVar("F", bound=Callable[..., object])

#: The attribute :func:`only_for` sets on a hook implementation.
ONLY_FOR = "chorus_only_for"


def only_for(*personalities: str) -> Callable[[F], F]:
    """Mark a hook implementation that takes a ``personality`` as concerning only the
    personalities named: the host does not call it when another one answers (as if it had
    returned None at once, without the task or thread hop of a call). Put it under
    ``@hookimpl``; a call without a ``personality`` (or with one that has no name) is made::

        @hookimpl
        @only_for("pirate")
        async def chorus_build_context(message, personality, context): ...
    """
    if not personalities:
        raise ValueError("only_for needs at least one personality name")

    def mark(function: F) -> F:
        setattr(function, ONLY_FOR, frozenset(personalities))
        return function

    return mark


# ---------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------


@hookspec
def chorus_settings_model() -> type[BaseModel] | None:
    """Declare this plugin's settings: return a pydantic model class.

    Chorus validates the section ``plugins.NAME`` of ``config/chorus.yaml`` (and its
    ``CHORUS_PLUGINS__NAME__KEY`` environment overrides) against it when it starts, stops with
    a clear error naming any key that does not fit, and hands the validated object to
    ``chorus_startup`` as ``config``. Must not be ``async``.
    """


@hookspec
def chorus_startup(app: App, config: BaseModel | None) -> None | Awaitable[None]:
    """Called once when Chorus has started, before the first message.

    :param app: the running Chorus (:class:`App`: its settings, database and memory).
    :param config: this plugin's settings, validated (see ``chorus_settings_model``); None
        when it declares no model.

    Open connections or warm caches here.
    """


@hookspec
def chorus_shutdown(app: App) -> None | Awaitable[None]:
    """Called once when Chorus stops, after the last message.

    :param app: the running Chorus (:class:`App`).

    Close what ``chorus_startup`` opened.
    """


# ---------------------------------------------------------------------------------------------
# Personalities
# ---------------------------------------------------------------------------------------------


@hookspec
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    """Offer personalities by calling ``register(Personality(...))`` for each.

    :param register: call it once per personality. The host rejects a name another
        plugin already registered (the plugin fails to load, with nothing half-registered).

    Called once per plugin when the plugin manager is built. Must not be ``async``.
    """


@hookspec
def chorus_register_commands(register: Callable[[CommandGroup], None]) -> None:
    """Offer commands by calling ``register(group)`` with a :class:`bot.commands.CommandGroup`
    (``names``, ``intent(text, explicit=…)``, ``async run(caller, name, args, explicit=…)``).

    :param register: call it once per group. A group whose names another already took is
        left out (logged); the plugin's other hooks still work.

    Called once when Chorus starts, after the built-in groups: ``/chorus NAME …`` (Slack,
    Discord), ``/NAME …`` (console) and the plain messages ``intent`` recognises reach the
    group. Must not be ``async``.
    """


@hookspec
def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None | Awaitable[None]:
    """Add sections to the context of a reply, with ``context.add(name, text, priority=)``.

    :param message: the message being answered.
    :param personality: the personality that will answer it.
    :param context: the context under construction: persona, sections, thread history.

    Called for every message, for every enabled plugin, before generation. Sections with
    higher priority (0–100) survive when the token budget is tight. A section holding the
    asker's own data should be followed by ``context.mark_personal("reason")``, so the answer
    is never reused for anyone else.
    """


@hookspec
def chorus_generate(
    message: Message, personality: Personality, context: Context, llm: LLMProvider
) -> Reply | None | Awaitable[Reply | None]:
    """Answer the message yourself, or return ``None`` to let the next plugin or the LLM answer.

    :param message: the message being answered.
    :param personality: the personality chosen to answer.
    :param context: the finished context; ``context.render(message.text)`` gives chat messages.
    :param llm: the configured provider, if you want to call it your own way.
    :returns: a :class:`bot.events.Reply`, or ``None``.

    The host takes the first non-``None`` result in plugin order; if every plugin returns
    ``None`` it calls the LLM with the rendered context.
    """


# ---------------------------------------------------------------------------------------------
# Tools, feedback, proactive work
# ---------------------------------------------------------------------------------------------


@hookspec
def chorus_tools(personality: Personality) -> list[Tool] | None:
    """Declare the tools a personality may call.

    :param personality: the personality the tools would serve.
    :returns: a list of :class:`bot.personality.Tool` (possibly empty), or ``None``.

    Each tool declares a JSON schema for its arguments and a side-effect level that the
    safety policy uses before any call runs. Models that can call tools are offered them; every
    call passes one executor (:mod:`bot.tools`): arguments validated against the schema, the
    admin's allow/deny lists, the person's autonomy comfort (a ✅/❌ question when needed), a
    timeout, and an audit entry. The handler gets the arguments as keyword arguments (plus a
    ``call`` :class:`bot.tools.ToolInvocation` if it has that parameter).
    """


@hookspec
def chorus_on_feedback(
    interaction: InteractionInfo, feedback: FeedbackInfo
) -> None | Awaitable[None]:
    """React to a rating of an answer.

    :param interaction: the answer that was rated (request, reply, who produced it).
    :param feedback: who rated it, the emoji, the rating (+1/-1, 0 when retracted).

    Called after the rating is stored, for every enabled plugin.
    """


@hookspec
def chorus_proactive_tasks(user: UserInfo) -> list[ProactiveTask] | None:
    """Offer proactive task templates for a person.

    :param user: the person the tasks would be offered to.
    :returns: a list of :class:`bot.personality.ProactiveTask`, or ``None``.

    Tasks run under the same safety policy as learned suggestions (daily cap, quiet hours,
    opt-out).
    """
