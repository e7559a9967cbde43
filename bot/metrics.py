"""What Chorus counts, for operators: Prometheus metrics (``prometheus_client``).

One registry per process (:data:`REGISTRY`), served as Prometheus text at ``/metrics`` by the
HTTP server. The core counts where things happen (the dispatcher, the providers' calls, the
storage breaker, the scheduler, the tool executor) through the small functions below, so a
feature never handles a metric object itself. Labels stay few and bounded: platforms,
outcomes, providers, tool names; never a tenant, a person or a text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "answered",
    "model_call",
    "model_failed",
    "rated",
    "render",
    "scheduler_tick",
    "storage_error",
    "tool_call",
]

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

MESSAGES = Counter(
    "chorus_messages",
    "Messages handled, by platform and what became of them.",
    ["platform", "outcome"],
    registry=REGISTRY,
)
ANSWER_SECONDS = Histogram(
    "chorus_answer_seconds",
    "Seconds from a message's arrival to its answer being delivered.",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 90),
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "chorus_model_tokens",
    "Tokens the language model read (prompt) and wrote (completion).",
    ["provider", "kind"],
    registry=REGISTRY,
)
MODEL_ERRORS = Counter(
    "chorus_model_errors",
    "Calls to the language model that failed (after its retries).",
    ["provider"],
    registry=REGISTRY,
)
RATINGS = Counter(
    "chorus_ratings",
    "Ratings given to answers (reactions and feedback buttons).",
    ["rating"],
    registry=REGISTRY,
)
SCHEDULER_TICKS = Counter(
    "chorus_scheduler_ticks",
    "Ticks of the proactive scheduler (in the leader process).",
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "chorus_tool_calls",
    "Tool calls, by tool and outcome.",
    ["tool", "outcome"],
    registry=REGISTRY,
)
STORAGE_ERRORS = Counter(
    "chorus_storage_errors",
    "Storage found unreachable (the database or Redis, each time it is marked out).",
    ["store"],
    registry=REGISTRY,
)


def answered(platform: str, outcome: str, seconds: float | None = None) -> None:
    """A message handled: ``outcome`` is answered, failed, undelivered, command, apologised
    or dropped; ``seconds`` from its arrival to its delivered answer."""
    MESSAGES.labels(platform, outcome).inc()
    if seconds is not None:
        ANSWER_SECONDS.labels(platform).observe(seconds)


def model_call(provider: str, prompt_tokens: int, completion_tokens: int) -> None:
    MODEL_TOKENS.labels(provider, "prompt").inc(max(0, prompt_tokens))
    MODEL_TOKENS.labels(provider, "completion").inc(max(0, completion_tokens))


def model_failed(provider: str) -> None:
    MODEL_ERRORS.labels(provider).inc()


def rated(rating: int) -> None:
    RATINGS.labels("up" if rating > 0 else "down" if rating < 0 else "retracted").inc()


def scheduler_tick() -> None:
    SCHEDULER_TICKS.inc()


def tool_call(tool: str, outcome: str) -> None:
    TOOL_CALLS.labels(tool[:64], outcome).inc()


def storage_error(store: str) -> None:
    STORAGE_ERRORS.labels(store).inc()


def render() -> bytes:
    """Every metric, as Prometheus text."""
    return generate_latest(REGISTRY)
