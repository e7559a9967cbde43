"""Typed settings: defaults < ``config/chorus.yaml`` < ``CHORUS_*`` environment variables.

Every key has a default here; ``config/chorus.yaml`` repeats them with comments (a test keeps
the two equal). ``CHORUS_SECTION__KEY=value`` overrides ``section.key`` (double underscore for
nesting; the value is read as a YAML scalar, so ``true``, ``5`` and ``[a, b]`` are typed).
Secrets are read only from the environment, into :class:`Secrets`, and never print.

Usage::

    settings = load_settings()                  # os.environ, ./config/chorus.yaml if present
    settings = load_settings(env={...}, path=p) # tests inject both
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError

__all__ = [
    "Settings",
    "Secrets",
    "load_settings",
    "load_secrets",
    "default_config_path",
    "mask_url",
    "ENV_PREFIX",
]

ENV_PREFIX = "CHORUS_"
#: Environment variables with the prefix that are not settings keys (the test suite's
#: server URLs may be set in the same environment as the settings).
_NOT_KEYS = {
    "CHORUS_CONFIG",
    "CHORUS_TEST_PG_URL",
    "CHORUS_TEST_REDIS_URL",
    "CHORUS_TEST_ALLOW_SKIP",
    "CHORUS_ADMIN_SECRET",  # a secret (Secrets.chorus_admin_secret), not a settings key
}
#: A time of day, "HH:MM" on a 24-hour clock.
_CLOCK = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotSettings(_Section):
    name: str = "Chorus"
    default_personality: str = "assistant"
    max_message_chars: int = Field(default=20_000, ge=100)
    admins: list[str] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    default_autonomy: Literal["low", "medium", "high"] = "medium"


class OpenAISettings(_Section):
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"


class AnthropicSettings(_Section):
    base_url: str = "https://api.anthropic.com"
    model: str = "claude-haiku-4-5"


class LocalModelSettings(_Section):
    model_path: str | None = None
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    n_threads_batch: int | None = Field(default=None, ge=1)
    seed: int = 0


class LLMSettings(_Section):
    provider: Literal["local", "openai", "anthropic"] = "local"
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_tokens: int = Field(default=400, ge=1)
    temperature: float = Field(default=0.7, ge=0, le=2)
    context_tokens: int = Field(default=1800, ge=128)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)


class LogSettings(_Section):
    """How log lines are written (their level is ``bot.log_level``)."""

    format: Literal["text", "json"] = "text"


class HTTPSettings(_Section):
    """The one HTTP server of ``chorus run``: Slack's Events API, the HTTP API, the admin
    page, ``/healthz``, ``/readyz`` and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    #: Where people reach this server (``https://chorus.example.com``), for the links Chorus
    #: sends (the admin page's one-time login link); None: ``http://HOST:PORT`` as it listens.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return url.strip().rstrip("/")


class AdminSettings(_Section):
    """The admin page (``/admin`` on the HTTP server): who may log in and for how long."""

    #: How long the one-time login link ``/chorus admin`` sends works, in minutes.
    link_minutes: int = Field(default=10, ge=1, le=60)
    #: How long a login lasts, in hours, however busy the admin is.
    session_hours: float = Field(default=8.0, gt=0, le=168)


class StorageSettings(_Section):
    data_dir: str = "data"
    database_url: str | None = None
    #: Where migrations connect (the tables' owner), when Chorus itself runs as a role that
    #: owns nothing (PostgreSQL row-level security; docs/postgresql.md). None: database_url.
    migrate_url: str | None = None
    redis_url: str | None = None
    auto_migrate: bool = True
    connect_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_s: float = Field(default=30.0, ge=0)
    outage_s: float = Field(default=5.0, ge=0)
    redis_timeout_s: float = Field(default=2.0, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'chorus.db'}"


class DispatcherSettings(_Section):
    dedupe_ttl_s: int = Field(default=86_400, ge=1)
    history_turns: int = Field(default=10, ge=0)
    history_ttl_s: int = Field(default=7 * 86_400, ge=60)
    identity_cache_s: float = Field(default=30.0, ge=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    rate_limit_per_minute: int = Field(default=30, ge=0)
    plugin_timeout_s: float = Field(default=10.0, gt=0)
    plugin_max_failures: int = Field(default=5, ge=1)
    deadline_s: float = Field(default=90.0, gt=0)
    lease_s: float = Field(default=15.0, gt=0)


class PluginSettings(_Section):
    """Where plugins come from and which are off; besides these keys, one section per plugin
    (``plugins.NAME``), validated by the plugin's own settings model when Chorus starts
    (:mod:`bot.plugin_settings`), so nothing plugin-specific is declared here."""

    model_config = ConfigDict(extra="allow")

    paths: list[str] = Field(default_factory=list)
    disabled: list[str] = Field(default_factory=list)
    state_cache_s: float = Field(default=5.0, ge=0)
    #: The older spelling of the plugins' sections (``plugins.config.NAME``); still read.
    config: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sections_are_mappings(self) -> PluginSettings:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                raise ValueError(f"plugins.{name} must be a mapping of that plugin's settings")
        return self

    def section(self, name: str) -> dict[str, Any]:
        """The raw settings of plugin ``name``: ``plugins.NAME`` over ``plugins.config.NAME``."""
        extra = (self.model_extra or {}).get(name)
        return {**self.config.get(name, {}), **(extra if isinstance(extra, dict) else {})}

    @property
    def sections(self) -> dict[str, dict[str, Any]]:
        """Every plugin section given, by plugin name."""
        names = [*self.config, *(self.model_extra or {})]
        return {name: self.section(name) for name in dict.fromkeys(names)}


class ReactionSettings(_Section):
    positive: list[str] = Field(
        default_factory=lambda: [
            "+1",
            "thumbsup",
            "heart",
            "tada",
            "white_check_mark",
            "heavy_check_mark",
            "👍",
            "❤️",
            "🎉",
            "✅",
            "✔️",
        ]
    )
    negative: list[str] = Field(
        default_factory=lambda: ["-1", "thumbsdown", "confused", "x", "👎", "😕", "❌"]
    )

    @field_validator("negative")
    @classmethod
    def _disjoint(cls, negative: list[str], info: Any) -> list[str]:
        both = set(negative) & set(info.data.get("positive", []))
        if both:
            raise ValueError(f"emoji listed as both positive and negative: {sorted(both)}")
        return negative


class LearningSettings(_Section):
    """Switches for each learning mechanism; off means the mechanism does not run."""

    interaction_tracking: bool = True
    workflow_pattern_tracking: bool = True
    preference_learning: bool = True
    adaptation: bool = True
    context_awareness: bool = True
    personalized_planning: bool = True
    safety_enhanced_execution: bool = True
    #: How much one reaction counts: the asker's own, and anyone else's (a bystander).
    asker_weight: float = Field(default=1.0, ge=0)
    bystander_weight: float = Field(default=0.5, ge=0)
    #: Self-checks: admins are told when the share of 👍 among the last
    #: ``satisfaction_window`` ratings of a personality or a person falls below
    #: ``satisfaction_alert`` (0 turns them off), once there are ``min_ratings_for_alert``.
    satisfaction_alert: float = Field(default=0.6, ge=0, le=1)
    min_ratings_for_alert: int = Field(default=10, ge=1)
    satisfaction_window: int = Field(default=50, ge=1)
    #: Answer cache (with ``adaptation``): an answer rated 👍 is reused for a question at least
    #: this similar (cosine of the embeddings) for ``cache_max_age_days`` (0 turns it off);
    #: the same test tells when two people asked the same question (a team answer).
    cache_similarity: float = Field(default=0.95, ge=0.5, le=1)
    cache_max_age_days: float = Field(default=30.0, ge=0)
    reactions: ReactionSettings = Field(default_factory=ReactionSettings)


class SlackSettings(_Section):
    """The Slack adapter; it starts when SLACK_BOT_TOKEN and an app token or signing secret
    are set."""

    api_url: str = "https://slack.com/api/"
    mode: Literal["auto", "socket", "http"] = "auto"
    path: str = "/slack/events"
    max_chars: int = Field(default=3900, ge=100, le=40_000)
    placeholder: str = "_Thinking…_"
    progress_after_s: float = Field(default=1.0, ge=0)
    thread_memory_s: int = Field(default=30 * 86_400, ge=60)
    timeout_s: int = Field(default=30, ge=1)
    max_rate_limit_retries: int = Field(default=3, ge=0, le=10)
    feedback_buttons: bool = False
    assistant: bool = True

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, url: str) -> str:
        return url if url.endswith("/") else url + "/"


class DiscordSettings(_Section):
    """The Discord adapter; it starts when DISCORD_TOKEN is set."""

    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg"
    message_content_intent: bool = True
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] | None = None
    max_chars: int = Field(default=2000, ge=100, le=2000)
    typing_after_s: float = Field(default=0.5, ge=0)
    ping_on_reply: bool = False
    thread_memory_s: int = Field(default=30 * 86_400, ge=60)
    sync_commands: bool = True
    command_guilds: list[int] = Field(default_factory=list)
    guild_ready_timeout_s: float = Field(default=2.0, ge=0)

    @field_validator("api_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/")

    @field_validator("gateway_url")
    @classmethod
    def _websocket(cls, url: str) -> str:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return url

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, ids: list[int] | None, info: Any) -> list[int] | None:
        count = info.data.get("shard_count")
        if ids is not None and (count is None or any(not 0 <= i < count for i in ids)):
            raise ValueError("needs shard_count, and every id must be in 0..shard_count-1")
        return ids


class RetrievalWeights(_Section):
    """How long-term memories are ranked for a message: the weights of the vector list and
    the lexical list in the rank fusion, and of recency and importance (bench/memory.py and
    bench/conversations.py measure them)."""

    semantic: float = Field(default=0.6, ge=0)
    lexical: float = Field(default=0.35, ge=0)
    recency: float = Field(default=0.03, ge=0)
    importance: float = Field(default=0.02, ge=0)


class MemorySettings(_Section):
    """Long-term memory: canonical rows in SQL, vectors in Chroma."""

    enabled: bool = True
    embedder: Literal["minilm", "openai"] = "minilm"
    openai_model: str = "text-embedding-3-small"
    openai_base_url: str | None = None
    chroma_url: str | None = None
    top_k: int = Field(default=5, ge=1, le=50)
    min_score: float = Field(default=0.3, ge=0, le=1)
    recency_half_life_days: float = Field(default=30.0, gt=0)
    extraction: Literal["auto", "rules", "off"] = "auto"
    weights: RetrievalWeights = Field(default_factory=RetrievalWeights)


class LinkingSettings(_Section):
    """Identity linking (bot.identity): one person's accounts on several platforms."""

    enabled: bool = True
    code_ttl_minutes: int = Field(default=10, ge=1, le=1440)
    #: How long a code entered waits for ``link confirm`` before nothing is linked.
    confirm_minutes: int = Field(default=5, ge=1, le=60)
    code_length: int = Field(default=10, ge=8, le=32)
    max_attempts: int = Field(default=5, ge=1, le=100)
    attempt_window_minutes: int = Field(default=60, ge=1, le=1440)


class ProactiveSettings(_Section):
    """Proactive suggestions: habits mined from the interaction history, offered before they
    are usually needed."""

    # Pattern mining
    #: A habit needs this many similar requests in the last ``window_days`` days, seen in at
    #: least ``min_weeks`` distinct weeks (weekly habits) or days (daily habits); a monthly
    #: habit needs three months. ``window_days`` covers four months, so that monthly habits
    #: ("the first Monday of each month") can be seen three times.
    min_occurrences: int = Field(default=4, ge=2)
    min_weeks: int = Field(default=3, ge=1)
    window_days: int = Field(default=120, ge=7, le=366)
    #: A suggestion is scheduled this many minutes before the usual time.
    lead_minutes: int = Field(default=10, ge=0, le=720)
    #: IANA time zone of people whose profile names none.
    default_timezone: str = "UTC"
    #: Two requests are the same kind of request when their word features are at least this
    #: alike (cosine, 0-1).
    similarity: float = Field(default=0.5, gt=0, le=1)
    #: Requests asked in one slot on different days, worded with few or no words in common,
    #: are one habit when their sentence embeddings (memory's embedder, less the direction
    #: all sentences share) are at least this alike on average across the habit's requests
    #: (cosine, 0-1; unrelated requests average about 0): only ever applied together with
    #: that agreement of times (half the slot tolerance, week after week).
    meaning_similarity: float = Field(default=0.1, gt=0, le=1)
    #: Requests this many minutes either side of the usual time count as the same slot.
    slot_tolerance_minutes: int = Field(default=90, ge=5, le=360)

    # Scheduler (the loop)
    #: False: no scheduler, no mining, no suggestions at all.
    enabled: bool = True
    #: Seconds between two checks for due suggestions.
    tick_s: int = Field(default=60, ge=1, le=3600)
    #: Hours between two runs of pattern mining (and of the plugins' task templates).
    mining_interval_h: float = Field(default=24.0, gt=0, le=24 * 7)
    #: A job or a suggestion late by up to this many seconds (the process was down or busy)
    #: still runs; later than that it is skipped until its next time.
    misfire_grace_s: int = Field(default=300, ge=1, le=86_400)
    #: Seconds the scheduler leader's Redis lock lives without renewal: when the leader dies,
    #: another process takes over within this time (plus one renewal period).
    leader_lock_ttl_s: float = Field(default=30.0, ge=1, le=600)
    #: Where the scheduler's own jobs persist: the Chorus SQL database, or memory (lost at exit).
    jobstore: Literal["sql", "memory"] = "sql"

    # Suggestions and safety
    #: At most this many suggestions per person per local day (0: none at all).
    max_per_day: int = Field(default=2, ge=0, le=50)
    #: No suggestions from ``quiet_hours_start`` until ``quiet_hours_end`` ("HH:MM", the
    #: person's local time; the window may cross midnight; equal times: no quiet hours).
    quiet_hours_start: str = "20:00"
    quiet_hours_end: str = "08:00"
    #: Whether suggestions may be sent on Saturdays and Sundays (the person's local days).
    weekends: bool = False
    #: A suggestion nobody reacted to within this many hours counts as ignored.
    ignore_after_h: float = Field(default=12.0, gt=0, le=168)
    #: A task is stopped after this many declines (❌) in a row; 🔕 stops it at once.
    stop_after_declines: int = Field(default=2, ge=1, le=20)
    #: Ignored suggestions back off 1, 2, 4… slots, at most this many.
    backoff_max_slots: int = Field(default=4, ge=1, le=52)

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00-23:59)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown IANA time zone {name!r}") from e
        return name


class ToolRules(_Section):
    """Tool names (shell-style patterns: ``send_*``) allowed or denied in one scope."""

    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)


class ToolsSettings(_Section):
    """Tools that personalities call through the executor, and the admin's limits on them."""

    enabled: bool = True
    #: Rounds of model → tool calls → results, and the seconds they may take together.
    max_rounds: int = Field(default=4, ge=1, le=20)
    max_seconds: float = Field(default=60.0, gt=0)
    call_timeout_s: float = Field(default=20.0, gt=0)
    confirm_timeout_s: float = Field(default=300.0, gt=0)
    #: Everywhere: a non-empty ``allow`` admits only those tools; ``deny`` always refuses.
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)
    #: Per workspace (``"slack:T0123"``) or channel (``"slack:T0123/C0456"``).
    scopes: dict[str, ToolRules] = Field(default_factory=dict)


class PlansSettings(_Section):
    """Multi-step plans: drafted by the model, shown with a confidence figure, run step by step
    through the tool executor after the person who asked approves them."""

    enabled: bool = True
    #: Most steps one plan may have; a longer plan is refused before it is shown.
    max_steps: int = Field(default=8, ge=1, le=20)
    #: How long a shown plan waits for its asker's ✅ or ❌ before it expires unrun.
    approval_timeout_s: float = Field(default=600.0, gt=0)
    #: A plan whose steps only read, for someone whose autonomy comfort is high, runs at once
    #: (still shown, with progress); false: every plan waits for ✅.
    auto_run_read_only: bool = True


class Settings(_Section):
    bot: BotSettings = Field(default_factory=BotSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    linking: LinkingSettings = Field(default_factory=LinkingSettings)
    proactive: ProactiveSettings = Field(default_factory=ProactiveSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    plans: PlansSettings = Field(default_factory=PlansSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The raw settings block of one plugin, ``plugins.NAME`` (empty if none). A plugin
        that declares a settings model gets them validated instead (``chorus_startup``'s
        ``config``)."""
        return self.plugins.section(name)


class Secrets(BaseModel):
    """Tokens and keys. Read from the environment only; ``repr`` and ``str`` mask them."""

    model_config = ConfigDict(frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    discord_token: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    #: Signs the admin page's session cookies; a random one per process when unset.
    chorus_admin_secret: SecretStr | None = None

    def configured(self) -> list[str]:
        """Names of the environment variables that are set (never their values)."""
        return [name.upper() for name, value in self if value is not None]


def default_config_path(env: Mapping[str, str]) -> Path | None:
    """``$CHORUS_CONFIG`` if set, else ``./config/chorus.yaml`` if it exists."""
    if env.get("CHORUS_CONFIG"):
        return Path(env["CHORUS_CONFIG"])
    candidate = Path("config") / "chorus.yaml"
    return candidate if candidate.is_file() else None


#: libyaml's safe loader where PyYAML was built with it: the settings file is read on every
#: ``chorus`` command, and the pure-Python loader takes 20 times longer (70 ms).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return data


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``CHORUS_A__B`` variables onto ``data``; return key path -> variable name."""
    origins: dict[str, str] = {}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var in _NOT_KEYS:
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            raise ConfigError(f"{var}: malformed name (use CHORUS_SECTION__KEY)")
        try:
            value = _yaml(env[var]) if env[var].strip() else None
        except yaml.YAMLError:
            value = env[var]
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
        origins[".".join(parts)] = var
    return origins


def _origin(loc: tuple[int | str, ...], origins: Mapping[str, str], path: Path | None) -> str:
    """Where the value at ``loc`` came from: the variable that set it or a parent, else the file."""
    parts = [str(p) for p in loc]
    for end in range(len(parts), 0, -1):
        origin = origins.get(".".join(parts[:end]))
        if origin:
            return f" (from {origin})"
    return f" (in {path})" if path is not None else ""


def _explain(error: ValidationError, origins: Mapping[str, str], path: Path | None) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        where = _origin(item["loc"], origins, path)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{key}{where}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(env: Mapping[str, str] | None = None, path: Path | None = None) -> Settings:
    """Build :class:`Settings` from defaults, the YAML file and the environment.

    Raises :class:`ConfigError` naming every invalid key and its problem.
    """
    env = os.environ if env is None else env
    path = path if path is not None else default_config_path(env)
    data = _read_yaml(path) if path is not None else {}
    origins = _apply_env(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_explain(e, origins, path)) from e


def load_secrets(env: Mapping[str, str] | None = None) -> Secrets:
    """Read the secrets :class:`Secrets` declares from their environment variables."""
    env = os.environ if env is None else env
    values = {name: env.get(name.upper()) or None for name in Secrets.model_fields}
    return Secrets.model_validate(values)


def mask_url(url: str | None) -> str | None:
    """Hide the password in a database or Redis URL: ``postgresql://u:***@host/db``."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
