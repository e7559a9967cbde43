"""Markdown (what LLMs write) to Slack mrkdwn.

Slack's mrkdwn differs from Markdown: ``*bold*``, ``_italic_``, ``~strike~``, links as
``<url|text>``, no headings, and ``&``, ``<``, ``>`` must be escaped. Code spans and fenced
blocks are kept verbatim (escaped only).
"""

from __future__ import annotations

import re

from adapters.partial import close_open_code

__all__ = ["partial_mrkdwn", "to_mrkdwn"]

_FENCED = re.compile(r"```[^\n`]*\n?(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+|mailto:[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)
_HR = re.compile(r"^[ \t]*([-*_])([ \t]*\1){2,}[ \t]*$", re.M)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _convert_prose(text: str) -> str:
    links: list[str] = []

    def keep_link(m: re.Match[str]) -> str:
        links.append(f"<{m.group(2)}|{_escape(m.group(1))}>")
        return f"\x00L{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _escape(text)
    text = _HR.sub("──────────", text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1)}\x01", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace("\x01", "*")
    return re.sub(r"\x00L(\d+)\x00", lambda m: links[int(m.group(1))], text)


def _convert_outside_inline_code(text: str) -> str:
    out: list[str] = []
    last = 0
    for m in _INLINE_CODE.finditer(text):
        out.append(_convert_prose(text[last : m.start()]))
        out.append(_escape(m.group(0)))
        last = m.end()
    out.append(_convert_prose(text[last:]))
    return "".join(out)


def to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack mrkdwn, leaving code untouched."""
    out: list[str] = []
    last = 0
    for m in _FENCED.finditer(markdown):
        out.append(_convert_outside_inline_code(markdown[last : m.start()]))
        out.append("```\n" + _escape(m.group(1).rstrip("\n")) + "\n```")
        last = m.end()
    out.append(_convert_outside_inline_code(markdown[last:]))
    return "".join(out)


def partial_mrkdwn(markdown: str) -> str:
    """:func:`to_mrkdwn` of an answer still being written: a code block or span it stops in
    is closed first, so the code is not converted as prose meanwhile."""
    return to_mrkdwn(close_open_code(markdown))
