"""What a test process works out once and keeps for its session, where the product works it out
once per process and the suite, building a new app (engine, providers) for each test, would
otherwise work it out again for each: a pytest plugin (``pytest_plugins`` in conftest.py).

Each cache is invisible to what a test checks: it returns what the uncached call returns, and
a test that changes what the answer depends on (a path on ``sys.path``, an environment
variable, a dialect's settings) gets a new answer.
"""

from __future__ import annotations

import importlib.metadata
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import Mapper
from sqlalchemy.util import LRUCache

#: Statements compiled, kept for every engine of the process (SQLAlchemy keeps 500 per engine).
COMPILED_STATEMENTS = 20_000


@pytest.fixture(scope="session", autouse=True)
def _entry_points_read_once() -> Iterator[None]:
    """``importlib.metadata.entry_points`` reads the metadata of every installed distribution
    (~190 files) on each call, and every Chorus a test builds calls it for its plugins: a third
    of building its plugin manager. Distributions are not installed in this process during a
    run (the tests that install a plugin run ``chorus`` in a subprocess), so the answer is kept
    for the session, per ``sys.path``: a path added by a test is still searched."""
    real = importlib.metadata.entry_points
    found: dict[tuple[tuple[str, ...], tuple[tuple[str, Any], ...]], Any] = {}

    def entry_points(**params: Any) -> Any:
        key = (tuple(sys.path), tuple(sorted(params.items())))
        if key not in found:
            found[key] = real(**params)
        return found[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.metadata, "entry_points", entry_points)
        yield


@pytest.fixture(scope="session", autouse=True)
def _tls_context_built_once() -> Iterator[None]:
    """The SDK clients' SSL contexts, built once per process and environment that chooses
    them (:func:`tests.forkserver.tls_context_cache`): ~160 clients in the suite."""
    import httpcore2

    from tests.forkserver import tls_context_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            httpcore2, "default_ssl_context", tls_context_cache(httpcore2.default_ssl_context)
        )
        yield


class CompiledAcrossEngines:
    """SQLAlchemy's cache of compiled statements, shared by every engine of the process.

    SQLAlchemy keys a compiled statement by the dialect *object* it was compiled for, and each
    engine has its own: every test's new engine compiled each statement it ran again, ~28,000
    compilations and ~18 s of CPU in the suite. Here a dialect stands for every dialect of the
    same class whose settings (its plain attributes: server version, paramstyle, schema, what
    the server supports...) are the same, which compile alike; a dialect not yet connected has
    no server version, so it shares with none that has. Same interface as SQLAlchemy's
    ``LRUCache`` as a ``compiled_cache``: ``get``, item assignment, ``clear``."""

    def __init__(self, size: int = COMPILED_STATEMENTS) -> None:
        self._compiled: LRUCache[Any, Any] = LRUCache(size)
        self._signatures: weakref.WeakKeyDictionary[Dialect, tuple[Any, ...]] = (
            weakref.WeakKeyDictionary()
        )

    def _signature(self, dialect: Dialect) -> tuple[Any, ...]:
        known = self._signatures.get(dialect)
        if known is not None:
            return known
        plain = tuple(
            sorted(
                (name, value)
                for name, value in vars(dialect).items()
                if value is None or isinstance(value, bool | int | float | str | tuple)
            )
        )
        signature = (type(dialect), plain)
        if dialect.server_version_info is not None:  # settled once it has connected
            self._signatures[dialect] = signature
        return signature

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self._signature(key[0]), *key[1:])

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        return self._compiled.get(self._key(key), default)

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self._compiled[self._key(key)] = value

    def clear(self) -> None:
        self._compiled.clear()


@pytest.fixture(scope="session", autouse=True)
def _statements_compiled_once() -> Iterator[None]:
    """Every engine, and the ORM's per-mapper caches of INSERT and UPDATE statements, use one
    :class:`CompiledAcrossEngines` for the session."""
    shared = CompiledAcrossEngines()
    # The attribute an engine keeps its cache in (SQLAlchemy's, not public): if it were renamed,
    # the property below would go unused and engines would quietly stop sharing.
    probe = create_engine("sqlite://")
    assert "_compiled_cache" in vars(probe), "SQLAlchemy's Engine no longer has _compiled_cache"
    probe.dispose()

    # An engine sets its cache in its constructor (None when made with query_cache_size=0).
    def cache(engine: Engine) -> CompiledAcrossEngines | None:
        return None if engine.__dict__.get("_no_compiled_cache") else shared

    def set_cache(engine: Engine, value: object) -> None:
        engine.__dict__["_no_compiled_cache"] = value is None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "_compiled_cache", property(cache, set_cache), raising=False)
        patch.setattr(Mapper, "_compiled_cache", property(lambda _mapper: shared))
        yield
