"""Plugins own their settings: each declares a pydantic model, and the host validates the
plugin's section of the configuration against it when Chorus starts.

A plugin declares its model with ``chorus_settings_model`` (a hook); its settings are the
section ``plugins.NAME`` of ``config/chorus.yaml`` (NAME: the plugin's name, as ``chorus
plugins list`` shows it), with environment overrides ``CHORUS_PLUGINS__NAME__KEY``. The
validated object reaches the plugin as ``chorus_startup``'s ``config``. A value that does not
fit stops start-up with a :class:`ConfigError` naming the key, as the core's settings do; a
section for a plugin that is not loaded is logged and ignored (it may be disabled, or not
installed on this machine).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.plugins import ChorusPluginManager

__all__ = ["validate_plugin_settings"]

log = logging.getLogger(__name__)


def validate_plugin_settings(settings: Settings, pm: ChorusPluginManager) -> dict[str, BaseModel]:
    """Each loaded plugin's settings object, by plugin name (those that declare a model).

    Raises :class:`ConfigError` listing every invalid key of every plugin."""
    models = pm.settings_models()
    sections = settings.plugins.sections
    for name in sorted(set(sections) - set(models)):
        if pm.has_plugin(name):
            log.warning("plugins.%s: the plugin declares no settings; the section is unused", name)
        else:
            log.warning("plugins.%s: no such plugin is loaded; the section is ignored", name)
    found: dict[str, BaseModel] = {}
    problems: list[str] = []
    for name, model in models.items():
        try:
            found[name] = model.model_validate(settings.plugins.section(name))
        except ValidationError as e:
            problems += _explain(name, e)
    if problems:
        raise ConfigError("invalid plugin configuration:\n  " + "\n  ".join(problems))
    return found


def _explain(name: str, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        key = ".".join(["plugins", name, *(str(p) for p in item["loc"])])
        message = "unknown setting" if item["type"] == "extra_forbidden" else item["msg"]
        env = "CHORUS_" + key.upper().replace(".", "__")
        lines.append(f"{key}: {message} (in the file, or {env})")
    return lines
