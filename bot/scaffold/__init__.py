"""``chorus plugins new NAME``: a new plugin package to start from, installable as it is.

What it writes (from the files in ``template/``): ``pyproject.toml`` with the
``chorus.plugins`` entry point, a module with a :class:`~bot.personality.Personality` (its
persona) and one hook (``chorus_build_context``), a test that loads the plugin through the
plugin API and passes, and a README that says what a plugin and a personality are. Nothing is
written over: the folder must be new or empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from bot.errors import ChorusError
from bot.personality import NAME_PATTERN

__all__ = ["Scaffold", "ScaffoldError", "scaffold"]

TEMPLATES = Path(__file__).with_name("template")


class ScaffoldError(ChorusError):
    """The package cannot be created (a bad name, a folder already in use)."""


@dataclass(frozen=True, slots=True)
class Scaffold:
    """What :func:`scaffold` made: the plugin's (and its personality's) name, the module
    holding its hooks, the distribution's name and the files written (pyproject first)."""

    name: str
    module: str
    dist: str
    root: Path
    files: tuple[Path, ...]


def names(name: str) -> dict[str, str]:
    """The names a package for plugin ``name`` uses: the module ``chorus_NAME``, the
    distribution ``chorus-NAME`` and the personality's display name ("Weather Bot")."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"{name!r} cannot name a plugin: use lowercase letters, digits and underscores, "
            "starting with a letter (2 to 40 characters), e.g. weather_bot"
        )
    return {
        "name": name,
        "module": f"chorus_{name}",
        "dist": "chorus-" + name.replace("_", "-"),
        "display": " ".join(word.capitalize() for word in name.split("_") if word),
    }


def scaffold(name: str, root: Path) -> Scaffold:
    """Write a new plugin package for ``name`` into the folder ``root`` (new or empty)."""
    values = names(name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(
            f"{root} already exists and is not an empty folder: nothing was written "
            "(choose another with --path)"
        )
    module = values["module"]
    plan = {
        root / "pyproject.toml": "pyproject.toml.tmpl",
        root / f"{module}.py": "module.py.tmpl",
        root / "tests" / f"test_{module}.py": "test_module.py.tmpl",
        root / "README.md": "README.md.tmpl",
    }
    rendered = {
        path: Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
        for path, template in plan.items()
    }
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Scaffold(name, module, values["dist"], root, tuple(rendered))
