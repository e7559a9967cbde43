"""The documentation is a site: ``mkdocs build --strict`` builds ``docs/`` (a broken link, an
anchor that is not there or a page left out of the navigation fails it), the README stays a
newcomer's page under 10 KB with the two set-up commands, every relative link in the README
and the docs leads somewhere, and every benchmark is on the one page of figures."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: The two commands a newcomer pastes on a fresh machine: run Chorus, run the tests.
SETUP_COMMANDS = (
    "scripts/install && .venv/bin/chorus run",
    "scripts/test",
)

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
_LEAKED_FENCE = re.compile(r"<p><code>(?:sh|text|python|yaml|sql|toml|json)\n")


def _prose(text: str) -> str:
    """The Markdown without code blocks and code spans (their brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs' ``toc`` make it (for the headings used here):
    the text without Markdown marks, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text.strip())


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of ``page`` whose file or heading is not there."""
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        where = f"{page.relative_to(root)}: {target}"
        if not linked.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{where} (no heading with that anchor)")
    return broken


def test_mkdocs_builds_the_site_in_strict_mode(tmp_path: Path) -> None:
    assert importlib.util.find_spec("mkdocs") is not None, (
        "mkdocs is not installed: pip install -e '.[test]' (scripts/test does)"
    )
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr + built.stdout
    assert (site / "index.html").is_file()
    assert (site / "benchmarks" / "index.html").is_file()
    assert (site / "guide" / "slack" / "index.html").is_file()
    # A code block Python-Markdown could not read (a fence indented inside a list item, as
    # GitHub would show it) comes out as a paragraph of inline code naming its language.
    leaked = [
        str(page.relative_to(site))
        for page in site.rglob("*.html")
        if _LEAKED_FENCE.search(page.read_text(encoding="utf-8"))
    ]
    assert leaked == [], f"code blocks shown as text in {leaked}: unindent them from the list"


def test_readme_is_a_newcomers_page() -> None:
    size = len(README.read_bytes())
    assert size < 10_000, f"README.md is {size} bytes: move detail into docs/"
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)
    for command in SETUP_COMMANDS:
        assert f"{command}\n" in blocks, f"the README lost its set-up command {command!r}"
    headings = {m.group(2) for m in _HEADING.finditer(_FENCE.sub("", text))}
    for needed in ("Start here", "Slack", "Discord", "Several processes", "Where to go next"):
        assert needed in headings, f"the README has no '## {needed}'"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert _broken_links(page) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# There\n\n## A `code` heading's part\n", "utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-code-headings-part) [gone](missing.md) [bad](there.md#nope)\n"
        "`[not a link](missing.md)` [web](https://example.com/x.md)\n",
        "utf-8",
    )
    assert _broken_links(page, tmp_path) == [
        "page.md: missing.md (no such file)",
        "page.md: there.md#nope (no heading with that anchor)",
    ]


def test_every_benchmark_is_on_the_benchmarks_page() -> None:
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    benches = sorted(
        path.stem
        for path in (ROOT / "bench").glob("*.py")
        if 'if __name__ == "__main__"' in path.read_text(encoding="utf-8")
    )
    assert benches, "no benchmark found under bench/"
    missing = [name for name in benches if f"python -m bench.{name} " not in page]
    assert missing == [], f"docs/benchmarks.md lists no `python -m bench.NAME` for {missing}"
