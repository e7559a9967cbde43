"""Every hook in bot/hookspecs.py is documented in docs/plugin_hooks.md and tested.

Adding a hook without its heading, signature, docstring or ``test_hook_<name>`` test fails
here, and so does changing a hook's signature without changing the documentation.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugin_hooks.md"
TESTS = ROOT / "tests"

HEADING = re.compile(r"^## (chorus_\w+)\(([^)]*)\)\s*$")


def _hookspecs() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    }


HOOKS = _hookspecs()


def _sections(text: str) -> dict[str, tuple[list[str], str]]:
    """Hook name → (parameter names in its heading, the section's text)."""
    found: dict[str, tuple[list[str], str]] = {}
    chunks = re.split(r"^(?=## )", text, flags=re.M)
    for chunk in chunks:
        heading, _, body = chunk.partition("\n")
        match = HEADING.match(heading)
        if match:
            params = [p.strip() for p in match.group(2).split(",") if p.strip()]
            found[match.group(1)] = (params, body)
    return found


# Session-scoped: under pytest-xdist a worker comes back to this module several times, and
# a module's fixtures are made again each time.
@pytest.fixture(scope="session")
def documented() -> dict[str, tuple[list[str], str]]:
    return _sections(DOCS.read_text(encoding="utf-8"))


def _signature(name: str) -> str:
    """``def chorus_x(a: A, b: B) -> R: ...``, as the hookspec declares it."""
    sig = inspect.signature(HOOKS[name])
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}: ..."


def _squeeze(code: str) -> str:
    """Code without layout, so a signature wrapped by ``ruff format`` still matches."""
    return re.sub(r"\s+", "", code).replace(",)", ")")


def test_hookspecs_are_found() -> None:
    assert len(HOOKS) >= 8
    assert "chorus_generate" in HOOKS


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_is_documented(hook: str, documented: dict[str, tuple[list[str], str]]) -> None:
    assert hook in documented, f"docs/plugin_hooks.md has no heading '## {hook}(...)'"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_documented_parameters_match_the_hookspec(
    hook: str, documented: dict[str, tuple[list[str], str]]
) -> None:
    params, body = documented.get(hook, ([], ""))
    expected = list(inspect.signature(HOOKS[hook]).parameters)
    assert params == expected, f"heading of {hook} lists {params}, the hookspec has {expected}"
    shown = _squeeze(body)
    assert _squeeze(_signature(hook)) in shown, f"section {hook} should show `{_signature(hook)}`"
    for name in expected:
        assert f"- `{name}`" in body, f"section {hook} does not describe parameter {name!r}"


def test_no_documented_hook_is_missing_from_hookspecs(
    documented: dict[str, tuple[list[str], str]],
) -> None:
    stale = sorted(set(documented) - set(HOOKS))
    assert not stale, f"docs/plugin_hooks.md documents hooks that do not exist: {stale}"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hookspec_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(HOOKS[hook]) or ""
    assert doc.strip(), f"{hook} in bot/hookspecs.py needs a docstring"
    for name in inspect.signature(HOOKS[hook]).parameters:
        assert f":param {name}:" in doc, f"the docstring of {hook} does not describe {name!r}"


@pytest.fixture(scope="session")
def hook_tests() -> set[str]:
    """The name of every test function under tests/ named ``test_hook_…`` (parsed once for
    all the hooks' tests; only the files that spell such a ``def`` are parsed)."""
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        source = path.read_text(encoding="utf-8")
        if not re.search(r"\bdef\s+test_hook_", source):
            continue
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("test_hook_"):
                    names.add(node.name)
    return names


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_has_a_test(hook: str, hook_tests: set[str]) -> None:
    wanted = f"test_hook_{hook}"
    found = [n for n in hook_tests if n == wanted or n.startswith(wanted + "_")]
    assert found, f"no test function named {wanted} under tests/"


def test_python_examples_in_the_docs_are_valid_python() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= len(HOOKS)
    for block in blocks:
        ast.parse(block)
