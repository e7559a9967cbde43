"""Chorus's exceptions.

The hierarchy::

    ChorusError
    ├── ConfigError            settings are invalid; the message names the key and the problem
    ├── StorageUnavailable     the SQL database cannot be reached or migrated
    ├── ProviderError          an LLM provider failed (timeout, HTTP error, bad answer)
    │   └── ModelNotFound      the local model file is missing
    ├── EmbedderUnavailable    the embedding model cannot be loaded or its API failed
    ├── PluginError
    │   ├── PluginLoadFailed   a plugin could not be imported or registered (rolled back)
    │   ├── DuplicatePersonality
    │   └── UnknownPersonality a name that no enabled plugin registered
    └── CommandError           a user command was invalid (the message is shown to the user)

Causes are always kept with ``raise ... from e``. Messages never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "ChorusError",
    "CommandError",
    "ConfigError",
    "DuplicatePersonality",
    "EmbedderUnavailable",
    "ModelNotFound",
    "PluginError",
    "PluginLoadFailed",
    "ProviderError",
    "StorageUnavailable",
    "UnknownPersonality",
]


class ChorusError(Exception):
    """Base of every error Chorus raises on purpose."""


class ConfigError(ChorusError):
    """Invalid settings. ``str(err)`` lists each bad key with its problem."""


class StorageUnavailable(ChorusError):
    """The SQL database cannot be reached, opened or migrated."""


class ProviderError(ChorusError):
    """An LLM provider call failed. ``provider`` names it; the text names no secret."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ModelNotFound(ProviderError):
    """The local model file does not exist or cannot be read."""


class EmbedderUnavailable(ChorusError):
    """Texts cannot be embedded: a model file is missing or unreadable, or the embedding API
    failed. The text names the file or server and what to check, never a secret."""


class PluginError(ChorusError):
    """Base of plugin problems."""


class PluginLoadFailed(PluginError):
    """A plugin failed to import or register."""

    def __init__(self, name: str, reason: str = "") -> None:
        super().__init__(f"plugin {name!r} failed to load" + (f": {reason}" if reason else ""))
        self.name = name


class DuplicatePersonality(PluginError):
    """Two plugins registered a personality with the same name."""


class UnknownPersonality(PluginError):
    """No enabled personality has that name."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.available = available


class CommandError(ChorusError):
    """A user command could not be carried out; ``str(err)`` is shown to the user."""
