"""Write the HTTP API's OpenAPI document to docs/openapi.json (or the file given):

    python -m adapters.api.openapi [PATH]

``tests/test_api_openapi.py`` fails while the file in the repository differs from what the
server serves; run this after changing the API, and commit the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from adapters.api.app import openapi_document

__all__ = ["DEFAULT_PATH", "render"]

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def render(document: dict[str, Any]) -> str:
    """The document as kept in the repository (stable order, one trailing newline)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
