"""The plugin manager: built-in plugins, the ``chorus.plugins`` entry points, drop-in files.

Build one with :func:`get_plugin_manager` (never at import time); each test builds its own.
A plugin that fails to import, misspells a hook or registers a clashing personality raises
:class:`~bot.errors.PluginLoadFailed` internally, is left out entirely, and the rest load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType, MethodType, ModuleType
from typing import Literal

import pluggy
from pydantic import BaseModel

from bot import hookspecs
from bot.commands.base import CommandGroup
from bot.errors import DuplicatePersonality, PluginLoadFailed, UnknownPersonality
from bot.personality import NAME_PATTERN, Personality

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "ChorusPluginManager",
    "PluginInfo",
    "PersonalityRegistry",
    "get_plugin_manager",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "chorus.plugins"

#: The built-in personalities, registered exactly like third-party plugins.
BUILTIN_PLUGINS = (
    "plugins.assistant",
    "plugins.marketing_maestro",
    "plugins.support_assistant",
    "plugins.data_analyst",
    "plugins.content_creator",
)

Source = Literal["builtin", "entrypoint", "path", "test"]


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    source: Source
    version: str
    module: str


@dataclass
class PersonalityRegistry:
    """Every personality registered, and which plugin offers it."""

    personalities: dict[str, Personality] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Personality:
        try:
            return self.personalities[name]
        except KeyError:
            raise UnknownPersonality(name, sorted(self.personalities)) from None

    def __contains__(self, name: object) -> bool:
        return name in self.personalities

    def available(self, enabled_plugins: Iterable[str]) -> list[Personality]:
        """Personalities whose plugin is enabled, in name order."""
        enabled = set(enabled_plugins)
        return [p for n, p in sorted(self.personalities.items()) if self.plugin_of[n] in enabled]


#: What pluggy takes a hook implementation from (see ChorusPluginManager.parse_hookimpl_opts).
_HOOKABLE = (FunctionType, MethodType, staticmethod, classmethod)
_ABSENT = object()


class ChorusPluginManager(pluggy.PluginManager):
    """A pluggy manager that also knows where each plugin came from and what it offers."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.load_errors: dict[str, str] = {}
        self.registry = PersonalityRegistry()

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        """pluggy's, but a module's attribute that cannot be a hook (a class, a constant, an
        imported module: most of a plugin module's names) is passed over without
        :func:`inspect.getattr_static`, a third of registering a plugin, which every app of
        the suite and every start pays for each plugin. pluggy hooks only functions, static
        and class methods, and bound methods; anything else it would pass over too."""
        if isinstance(plugin, ModuleType):
            value = vars(plugin).get(name, _ABSENT)
            if value is not _ABSENT and not isinstance(value, _HOOKABLE):
                return None
        return super().parse_hookimpl_opts(plugin, name)

    def load(
        self,
        name: str,
        loader: Callable[[], object],
        *,
        source: Source,
        version: str = "",
    ) -> None:
        """Import and register one plugin, or raise :class:`PluginLoadFailed` leaving no trace."""
        if not NAME_PATTERN.match(name):
            raise PluginLoadFailed(name, f"plugin names must match {NAME_PATTERN.pattern}")
        if self.has_plugin(name):
            raise PluginLoadFailed(name, "a plugin with this name is already loaded")
        try:
            plugin = loader()
            self.register(plugin, name=name)
        except Exception as e:
            raise PluginLoadFailed(name, f"{type(e).__name__}: {e}") from e
        try:
            self.check_pending()
            offered = self._collect_personalities(name)
        except Exception as e:
            self.unregister(name=name)
            raise PluginLoadFailed(name, f"{type(e).__name__}: {e}") from e
        for personality in offered:
            self.registry.personalities[personality.name] = personality
            self.registry.plugin_of[personality.name] = name
        module = getattr(plugin, "__name__", type(plugin).__name__)
        self.info[name] = PluginInfo(name, source, version, module)

    def try_load(
        self, name: str, loader: Callable[[], object], *, source: Source, version: str = ""
    ) -> bool:
        """:meth:`load`, logging a failure instead of raising it. Returns success."""
        try:
            self.load(name, loader, source=source, version=version)
        except PluginLoadFailed as e:
            log.error("%s", e)
            self.load_errors[name] = str(e)
            return False
        return True

    def settings_models(self) -> dict[str, type[BaseModel]]:
        """Each plugin's settings model (``chorus_settings_model``), by plugin name; a plugin
        whose hook fails or returns something else is left out (logged)."""
        found: dict[str, type[BaseModel]] = {}
        for impl in self.hook.chorus_settings_model.get_hookimpls():
            try:
                model = impl.function()
            except Exception as e:
                log.error("plugin %s: chorus_settings_model failed: %s", impl.plugin_name, e)
                continue
            if model is None:
                continue
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                log.error(
                    "plugin %s: chorus_settings_model must return a pydantic model class, not %r",
                    impl.plugin_name,
                    model,
                )
                continue
            found[impl.plugin_name] = model
        return found

    def command_groups(self) -> list[tuple[str, CommandGroup]]:
        """The command groups plugins offer (``chorus_register_commands``), with the name of
        each one's plugin; a plugin whose hook fails offers none (logged)."""
        found: list[tuple[str, CommandGroup]] = []
        for impl in self.hook.chorus_register_commands.get_hookimpls():
            offered: list[CommandGroup] = []

            def register(group: CommandGroup, offered: list[CommandGroup] = offered) -> None:
                if not isinstance(group, CommandGroup):
                    raise TypeError(f"register() takes a CommandGroup, not {type(group)}")
                offered.append(group)

            try:
                result = impl.function(register=register)
                if result is not None and hasattr(result, "__await__"):
                    getattr(result, "close", lambda: None)()
                    raise TypeError("chorus_register_commands must not be async")
            except Exception as e:
                log.error("plugin %s: chorus_register_commands failed: %s", impl.plugin_name, e)
                continue
            found += [(impl.plugin_name, group) for group in offered]
        return found

    def _collect_personalities(self, name: str) -> list[Personality]:
        offered: list[Personality] = []
        plugin = self.get_plugin(name)
        for impl in self.hook.chorus_register_personalities.get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(personality: Personality) -> None:
                if not isinstance(personality, Personality):
                    raise TypeError(f"register() takes a Personality, not {type(personality)}")
                taken = personality.name in self.registry.personalities or any(
                    p.name == personality.name for p in offered
                )
                if taken:
                    owner = self.registry.plugin_of.get(personality.name, name)
                    raise DuplicatePersonality(
                        f"personality {personality.name!r} is already registered by {owner!r}"
                    )
                offered.append(personality)

            result = impl.function(register=register)
            if result is not None and hasattr(result, "__await__"):
                close = getattr(result, "close", None)
                if callable(close):
                    close()  # never awaited: close it so no RuntimeWarning leaks out
                raise TypeError("chorus_register_personalities must not be async")
        return offered


def _load_file(path: Path) -> Callable[[], ModuleType]:
    def loader() -> ModuleType:
        if not path.is_file():
            raise FileNotFoundError(f"no plugin file at {path}")
        mod_name = f"chorus_dropin_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
        return module

    return loader


def _drop_in_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        else:
            files.append(path)
    return files


def get_plugin_manager(
    paths: Sequence[str] = (),
    *,
    builtins: bool = True,
    entry_points: bool = True,
) -> ChorusPluginManager:
    """Build a plugin manager: hook specs, built-ins, entry points, then drop-in files.

    Plugins that fail to load are logged and listed in ``pm.load_errors``; the others load.
    """
    pm = ChorusPluginManager()
    if builtins:
        from bot import __version__  # the built-ins ship with Chorus: they are its version

        for module in BUILTIN_PLUGINS:
            pm.try_load(
                module.rsplit(".", 1)[1],
                lambda m=module: importlib.import_module(m),  # type: ignore[misc]
                source="builtin",
                version=__version__,
            )
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist is not None else ""
            pm.try_load(ep.name, ep.load, source="entrypoint", version=version)
    for path in _drop_in_files(paths):
        pm.try_load(path.stem, _load_file(path), source="path", version="")
    return pm
