"""Settings: config/chorus.yaml equals the code's defaults; env over file over defaults;
clear errors; secrets from the environment only and never printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bot.builtin_tools.settings import AnalyticsSecrets
from bot.errors import ConfigError
from bot.plugins import get_plugin_manager
from bot.settings import (
    Secrets,
    Settings,
    default_config_path,
    load_secrets,
    load_settings,
    mask_url,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "chorus.yaml"
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))

SECRET_VARS = [
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DISCORD_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "CHORUS_ADMIN_SECRET",
    "ANALYTICS_DATABASE_URL",
    "ANALYTICS_DATABASE_PASSWORD",
]
LEARNING_SWITCHES = [
    "interaction_tracking",
    "workflow_pattern_tracking",
    "preference_learning",
    "adaptation",
    "context_awareness",
    "personalized_planning",
    "safety_enhanced_execution",
]


def write(tmp_path: Path, text: str, name: str = "chorus.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(env: dict[str, str] | None = None, path: Path | None = None) -> Settings:
    """Settings from exactly ``env`` and ``path`` (never the real environment or ./config)."""
    return load_settings(env=env or {}, path=path)


#: The built-in plugins' settings models (each declares its own: bot/plugin_settings.py).
PLUGIN_MODELS = get_plugin_manager(entry_points=False).settings_models()


def leaf_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of a settings model, e.g. ``("llm", "openai", "model")``."""
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from leaf_keys(sub, (*prefix, name))
        else:
            yield (*prefix, name)


def env_var(key: tuple[str, ...]) -> str:
    return "CHORUS_" + "__".join(key).upper()


# -- config/chorus.yaml -----------------------------------------------------------------------


def test_chorus_yaml_loads_to_exactly_the_defaults() -> None:
    settings = load(path=CONFIG)
    core = settings.model_dump(exclude={"plugins": set(PLUGIN_MODELS)})
    assert core == Settings().model_dump()
    # Each built-in plugin's section is exactly its settings model's defaults.
    assert sorted(settings.plugins.sections) == sorted(PLUGIN_MODELS)
    for name, model in PLUGIN_MODELS.items():
        assert model.model_validate(settings.plugins.section(name)) == model(), name


def test_chorus_yaml_lists_every_key_in_the_models_order() -> None:
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    sections = {name: raw["plugins"].pop(name) for name in list(raw["plugins"])[4:]}
    assert list(sections) == list(PLUGIN_MODELS), "one section per built-in plugin, in order"

    def check(model: type[BaseModel], data: dict[str, Any], where: str) -> None:
        assert list(data) == list(model.model_fields), f"keys of {where or 'the top level'}"
        for name, field in model.model_fields.items():
            sub = field.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                assert isinstance(data[name], dict), f"{where}{name} must be a section"
                check(sub, data[name], f"{where}{name}.")

    check(Settings, raw, "")
    # The values as written (not merely their effect after defaults fill the gaps).
    assert raw == Settings().model_dump(mode="json")
    for name, model in PLUGIN_MODELS.items():
        check(model, sections[name], f"plugins.{name}.")
        assert sections[name] == model().model_dump(mode="json"), name


def test_chorus_yaml_comments_every_key_with_its_environment_variable() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    keys = list(leaf_keys(Settings))
    for name, model in PLUGIN_MODELS.items():
        keys += list(leaf_keys(model, ("plugins", name)))
    assert len(keys) > 30
    missing = [env_var(k) for k in keys if env_var(k) not in text]
    assert not missing, f"not mentioned in config/chorus.yaml: {missing}"
    # Each key with a value (not a section heading) has a comment above it, or above the
    # group of keys it belongs to (e.g. host, port and path explained together).
    lines = [line.strip() for line in text.splitlines()]

    def is_setting(line: str) -> bool:
        return bool(line) and not line.startswith(("#", "-")) and not line.endswith(":")

    for i, line in enumerate(lines):
        if is_setting(line):
            above = i - 1
            while is_setting(lines[above]):
                above -= 1
            assert lines[above].startswith("#"), f"no comment above line {i + 1}: {line}"


def test_chorus_yaml_header_explains_precedence_and_secrets() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    header = text.split("\nbot:", 1)[0]
    assert "Precedence" in header and "CHORUS_" in header
    assert header.index("defaults") < header.index("this file") < header.index("environment")
    for var in SECRET_VARS:
        assert var in header
    assert "demo quality" in text.lower()


def test_secrets_named_in_the_header_are_the_ones_secrets_reads() -> None:
    read = [name.upper() for name in Secrets.model_fields]
    read += [f"ANALYTICS_DATABASE_{name.upper()}" for name in AnalyticsSecrets.model_fields]
    assert sorted(read) == sorted(SECRET_VARS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_overlays(path: Path) -> None:
    settings = load(path=path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(raw) <= set(Settings.model_fields)
    assert settings != Settings()


def test_examples_cover_openai_ollama_and_production() -> None:
    assert {p.name for p in EXAMPLES} >= {"openai.yaml", "ollama.yaml", "production.yaml"}
    ex = ROOT / "config" / "examples"
    assert load(path=ex / "openai.yaml").llm.provider == "openai"
    ollama = load(path=ex / "ollama.yaml").llm
    assert ollama.provider == "openai" and "11434" in ollama.openai.base_url
    storage = load(path=ex / "production.yaml").storage
    assert storage.resolved_database_url().startswith("postgresql")
    assert (storage.redis_url or "").startswith("redis://")


# -- the environment --------------------------------------------------------------------------


def test_env_overrides_nested_keys_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "llm:\n  provider: anthropic\n  openai:\n    model: from-file\n")
    settings = load(
        {"CHORUS_LLM__OPENAI__MODEL": "gpt-test", "CHORUS_LLM__PROVIDER": "openai"}, path
    )
    assert settings.llm.provider == "openai"
    assert settings.llm.openai.model == "gpt-test"
    # Siblings of an overridden key keep their defaults.
    assert settings.llm.openai.base_url == Settings().llm.openai.base_url
    assert load(path=path).llm.openai.model == "from-file"


def test_env_values_are_typed() -> None:
    settings = load(
        {
            "CHORUS_STORAGE__AUTO_MIGRATE": "false",
            "CHORUS_DISPATCHER__HISTORY_TURNS": "5",
            "CHORUS_LLM__TEMPERATURE": "0.2",
            "CHORUS_PLUGINS__DISABLED": "[a, b]",
            "CHORUS_BOT__ADMINS": "[slack:U1]",
            "CHORUS_LEARNING__ADAPTATION": "true",
        }
    )
    assert settings.storage.auto_migrate is False
    assert settings.dispatcher.history_turns == 5
    assert settings.llm.temperature == 0.2
    assert settings.plugins.disabled == ["a", "b"]
    assert settings.bot.admins == ["slack:U1"]
    assert settings.learning.adaptation is True


def test_env_empty_value_means_null() -> None:
    assert load({"CHORUS_STORAGE__DATABASE_URL": ""}).storage.database_url is None


def test_non_setting_variables_are_ignored(tmp_path: Path) -> None:
    env = {
        "CHORUS_CONFIG": str(write(tmp_path, "bot:\n  name: Via-Env\n")),
        "CHORUS_TEST_PG_URL": "postgresql://x@127.0.0.1/db",
        "CHORUS_TEST_REDIS_URL": "redis://127.0.0.1/1",
        "OPENAI_API_KEY": "sk-not-a-setting",
        "PATH": "/usr/bin",
    }
    assert load_settings(env=env).bot.name == "Via-Env"
    assert default_config_path(env) == tmp_path / "chorus.yaml"


def test_invalid_env_value_names_the_key_and_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CHORUS_LLM__TIMEOUT_S": "soon"})
    assert "llm.timeout_s (from CHORUS_LLM__TIMEOUT_S)" in str(info.value)


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("CHORUS_LLM__PROVIDER", "gpt", "llm.provider"),
        ("CHORUS_DISPATCHER__HISTORY_TURNS", "-1", "dispatcher.history_turns"),
        ("CHORUS_LLM__TEMPERATURE", "3", "llm.temperature"),
        ("CHORUS_BOT__LOG_LEVEL", "LOUD", "bot.log_level"),
        ("CHORUS_BOT__ADMINS", "[[nested]]", "bot.admins.0"),
        ("CHORUS_LLM__OPENAI", "5", "llm.openai"),
    ],
)
def test_invalid_values_from_env(var: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({var: value})
    assert f"{key} (from {var})" in str(info.value)


def test_unknown_key_from_env_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CHORUS_LLM__OPENAI__MODLE": "x"})
    assert "llm.openai.modle (from CHORUS_LLM__OPENAI__MODLE): unknown setting" in str(info.value)


def test_unknown_key_in_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "storage:\n  databse_url: sqlite://\n")
    with pytest.raises(ConfigError) as info:
        load(path=path)
    message = str(info.value)
    assert "storage.databse_url" in message and "unknown setting" in message
    assert str(path) in message


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CHORUS_LLM__MAX_TOKENS": "0", "CHORUS_BOT__NOPE": "1"})
    message = str(info.value)
    assert "llm.max_tokens (from CHORUS_LLM__MAX_TOKENS)" in message
    assert "bot.nope (from CHORUS_BOT__NOPE)" in message


def test_malformed_variable_name() -> None:
    with pytest.raises(ConfigError, match="CHORUS_LLM____MODEL: malformed"):
        load({"CHORUS_LLM____MODEL": "x"})


def test_emoji_in_both_reaction_lists_is_rejected() -> None:
    with pytest.raises(ConfigError, match="both positive and negative"):
        load({"CHORUS_LEARNING__REACTIONS__NEGATIVE": "[heart]"})


# -- the file ---------------------------------------------------------------------------------


def test_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "llm:\n  provider: [openai\n")
    with pytest.raises(ConfigError, match="is not valid YAML") as info:
        load(path=path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_a_clear_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must hold a mapping of sections"):
        load(path=write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(path=tmp_path / "nope.yaml")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load(path=write(tmp_path, "# nothing yet\n")) == Settings()


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="llm"):
        load(path=write(tmp_path, "llm: openai\n"))


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "secrets:\n  openai_api_key: sk-live\n",
        "openai_api_key: sk-live\n",
        "llm:\n  openai:\n    api_key: sk-live\n",
        "bot:\n  slack_bot_token: xoxb-live\n",
        "discord:\n  token: live\n",
    ],
)
def test_secrets_in_the_file_are_rejected_as_unknown(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="unknown setting") as info:
        load(path=write(tmp_path, text))
    assert "live" not in str(info.value)


def test_secrets_only_from_the_environment() -> None:
    env = {
        "OPENAI_API_KEY": "sk-secret-value",
        "SLACK_BOT_TOKEN": "xoxb-secret-value",
        "DISCORD_TOKEN": "",
    }
    secrets = load_secrets(env)
    assert secrets.openai_api_key is not None
    assert secrets.openai_api_key.get_secret_value() == "sk-secret-value"
    assert secrets.discord_token is None  # empty means unset
    assert secrets.configured() == ["SLACK_BOT_TOKEN", "OPENAI_API_KEY"]
    # Settings never pick them up, and a CHORUS_ variable cannot smuggle them in.
    assert "secret-value" not in repr(load(env))
    with pytest.raises(ConfigError, match="unknown setting"):
        load({"CHORUS_SECRETS__OPENAI_API_KEY": "sk-secret-value"})


def test_the_admin_secret_is_a_secret_not_a_setting() -> None:
    env = {"CHORUS_ADMIN_SECRET": "sign-with-this"}
    secrets = load_secrets(env)
    assert secrets.chorus_admin_secret is not None
    assert secrets.chorus_admin_secret.get_secret_value() == "sign-with-this"
    assert "sign-with-this" not in repr(load(env))  # no "unknown setting admin_secret" either


def test_public_url_is_an_http_url_without_a_trailing_slash() -> None:
    assert load({"CHORUS_HTTP__PUBLIC_URL": "https://chorus.example.com/"}).http.public_url == (
        "https://chorus.example.com"
    )
    assert load({}).http.public_url is None
    with pytest.raises(ConfigError, match="http.public_url"):
        load({"CHORUS_HTTP__PUBLIC_URL": "chorus.example.com"})


def test_secrets_never_print() -> None:
    env = {var: f"value-of-{var}" for var in SECRET_VARS}
    secrets = load_secrets(env)
    analytics = AnalyticsSecrets.from_env(env)
    assert len(secrets.configured()) == len(SECRET_VARS) - 2
    assert analytics.url is not None and analytics.password is not None
    shown = [
        repr(secrets),
        str(secrets),
        f"{secrets}",
        str(secrets.model_dump()),
        secrets.model_dump_json(),
        repr(secrets.slack_bot_token),
        str(secrets.slack_bot_token),
        repr(analytics),
        analytics.model_dump_json(),
    ]
    for text in shown:
        assert "value-of-" not in text, text


def test_secrets_are_frozen() -> None:
    secrets = load_secrets({"OPENAI_API_KEY": "sk-x"})
    with pytest.raises(ValueError):
        secrets.openai_api_key = None  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://chorus:hunter2@db:5432/chorus", "postgresql://chorus:***@db:5432/chorus"),
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("postgresql://chorus@db/chorus", "postgresql://chorus@db/chorus"),
        ("sqlite:///data/chorus.db", "sqlite:///data/chorus.db"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_url_hides_passwords(url: str | None, shown: str | None) -> None:
    assert mask_url(url) == shown


# -- switches and plugin blocks ---------------------------------------------------------------


def test_learning_switches_exist_and_default_on() -> None:
    learning = Settings().learning
    for name in LEARNING_SWITCHES:
        assert getattr(learning, name) is True, name
    switches = {n for n, f in type(learning).model_fields.items() if f.annotation is bool}
    assert switches == set(LEARNING_SWITCHES)


def test_a_learning_switch_turns_off_from_env() -> None:
    settings = load({"CHORUS_LEARNING__PREFERENCE_LEARNING": "false"})
    assert settings.learning.preference_learning is False
    assert settings.learning.adaptation is True


def test_plugin_config_returns_the_plugins_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plugins:\n  config:\n    marketing_maestro:\n      brand: Acme\n"
        "    data_analyst:\n      sql_dialect: postgres\n",
    )
    settings = load({"CHORUS_PLUGINS__CONFIG__MARKETING_MAESTRO__VOICE": "warm"}, path)
    assert settings.plugin_config("marketing_maestro") == {"brand": "Acme", "voice": "warm"}
    assert settings.plugin_config("data_analyst") == {"sql_dialect": "postgres"}
    assert settings.plugin_config("nobody") == {}
    # A copy: a plugin changing its block changes nobody else's view.
    settings.plugin_config("marketing_maestro")["brand"] = "Other"
    assert settings.plugin_config("marketing_maestro")["brand"] == "Acme"


def test_plugin_config_must_be_a_mapping_per_plugin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plugins.config.assistant"):
        load(path=write(tmp_path, "plugins:\n  config:\n    assistant: yes\n"))


def test_resolved_database_url_defaults_to_sqlite_under_data_dir() -> None:
    settings = load({"CHORUS_STORAGE__DATA_DIR": "/srv/chorus"})
    assert settings.storage.resolved_database_url() == "sqlite:////srv/chorus/chorus.db"
    url = "postgresql://u@h/db"
    assert load({"CHORUS_STORAGE__DATABASE_URL": url}).storage.resolved_database_url() == url
