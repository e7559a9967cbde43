"""The shape of the code (docs/architecture.md): no import cycle inside ``bot``, and ``bot``
never imports an adapter or a platform SDK.

Imports are read from the source (ast), all of them: at module level, inside functions, and
under ``if TYPE_CHECKING:`` — a cycle closed by a type-only or a function-local import is
still a cycle a reader has to hold in their head. (That plugins import only the plugin API is
tests/test_builtin_plugins.py's ``test_plugins_use_only_the_public_plugin_api``.)
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Packages of the platform SDKs: only adapters/ may import them.
PLATFORM_SDKS = ("slack_sdk", "slack_bolt", "discord")


def modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (migrations excepted: Alembic's)."""
    found = {}
    for path in package.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@functools.cache
def _import_nodes(path: Path) -> tuple[ast.Import | ast.ImportFrom, ...]:
    """The import statements of ``path``, wherever they stand (parsed once per path: the
    checks below each read the whole of bot/ and adapters/)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return tuple(n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))


def imported(path: Path, name: str, known: set[str] | None = None) -> Iterator[str]:
    """The dotted names ``path`` (module ``name``) imports, wherever the import stands.

    ``from package import name`` names the submodule ``package.name`` when ``known`` has it
    (the package's ``__init__`` runs for any of its submodules anyway), else ``package``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _import_nodes(path):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if known is not None and full in known else base


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of the same tree it imports."""
    known = set(mods)
    return {
        name: {t for t in imported(path, name, known) if t in mods and t != name}
        for name, path in mods.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_bot() -> None:
    found = cycles(graph(modules(ROOT / "bot")))
    assert found == [], "import cycles (type-only and function-local imports count):\n" + "\n".join(
        " ⇄ ".join(group) for group in found
    )


def test_bot_imports_no_adapter_and_no_platform_sdk() -> None:
    offending = sorted(
        f"{name} imports {target}"
        for name, path in modules(ROOT / "bot").items()
        for target in set(imported(path, name))
        if target.split(".")[0] in ("adapters", *PLATFORM_SDKS)
    )
    assert offending == []


def test_the_cycle_finder_sees_type_only_and_function_local_imports(tmp_path: Path) -> None:
    """The checks above can fail: a cycle closed only under TYPE_CHECKING, or only inside a
    function, is found."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import x\n"
    )
    (pkg / "c.py").write_text("def f():\n    from . import a\n    return a\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    assert cycles(graph(modules(pkg))) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize("sdk", PLATFORM_SDKS)
def test_platform_sdks_are_the_adapters_business(sdk: str) -> None:
    users = {
        name.split(".")[0]
        for tree in ("bot", "adapters")
        for name, path in modules(ROOT / tree).items()
        if any(t.split(".")[0] == sdk for t in imported(path, name))
    }
    assert users <= {"adapters"}
