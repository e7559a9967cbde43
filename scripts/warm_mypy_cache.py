"""Fill mypy's cache with the installed packages that Chorus imports, once per install.

The suite's mypy gate (tests/test_quality.py) type-checks ``bot`` and ``adapters``, and with
them about 8,000 modules of the packages they import (pydantic, SQLAlchemy, FastAPI, the Slack
and Discord SDKs, the standard library's stubs...): about 30 s of CPU from an empty cache, of
which Chorus's own 250 modules are about 5. What those packages hold changes only when they
are installed again, so scripts/test runs this after each install: mypy checks a module that
imports every third-party module ``bot`` and ``adapters`` import, with the project's settings,
into the project's cache (.mypy_cache). The gate then checks Chorus's modules against that
cache, and checks them all: nothing of Chorus's is in it.

    .venv/bin/python scripts/warm_mypy_cache.py
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "adapters")


def third_party_imports() -> list[str]:
    """Every module outside Chorus and the standard library that its type-checked code imports
    by absolute name (the migrations are not type-checked: pyproject.toml excludes them)."""
    local = {*PACKAGES, "__future__", *sys.stdlib_module_names}
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in local)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="chorus-mypy-") as tmp:
        module = Path(tmp) / "chorus_imports.py"
        module.write_text("".join(f"import {name}\n" for name in third_party_imports()))
        mypy = Path(sys.executable).parent / "mypy"
        # The project's settings (pyproject.toml) and cache; what mypy says of this throwaway
        # module does not matter, the gate judges Chorus's code.
        run = subprocess.run([str(mypy), str(module)], cwd=ROOT, capture_output=True, text=True)
    if run.returncode not in (0, 1):
        failed = f"warm_mypy_cache: mypy failed ({run.returncode}); the gate starts cold"
        print(failed, file=sys.stderr)
        print(run.stderr[-2000:], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
