"""What a request asks for, without the chat around it: the text habits are mined from, and
the short title a suggestion names.

People write requests the way they chat: "<@U0BOT> quick one: what's on my calendar today
:pray:", "- summarize pipeline for sales", "when you get a sec, accounts at risk of churn 🙏".
:func:`normalise` takes out what says nothing about *what* is asked:

- mentions (Slack ``<@U…>``, ``<!here>``, Discord ``<@!…>``, ``<@&…>``, a plain ``@name``):
  one at the start or the end (addressing the bot) goes; one inside keeps the name
  ("prep for my 1:1 with <@U7|sam>" → "prep for my 1:1 with sam");
- emoji: Slack shortcodes (``:pray:``, ``:+1::skin-tone-2:``) and Unicode emoji (through the
  ``emoji`` package);
- list markers ("- ", "* ", "• ", "1.", "2)") and Slack formatting (``*bold*``, ``_it_``,
  ``~x~``, links shown by their label);
- courtesy and filler: greetings ("hey", "morning"), "quick one:", "qq:", "fyi", "when you get
  a sec", "if you can", "no rush", "please", "thanks (in advance)", "cheers", "appreciate it".

:func:`title` makes the short label a suggestion shows ("It's Monday 10:06 and you usually
ask me for *what's on my calendar today*"): the normalised request without the opening ask
("can you", "send me"), its first letter lowered unless it is an acronym or a name, at most
:data:`TITLE_MAX` characters. :func:`clutter` says what is left in a text that a title must
not carry (bench/proactive.py counts descriptions with any).
"""

from __future__ import annotations

import re
from functools import lru_cache

import emoji

__all__ = ["TITLE_MAX", "clutter", "normalise", "title"]

#: The longest title, in characters (cut at a word, with "…").
TITLE_MAX = 80

_SLACK_LINK = re.compile(r"<(?:https?|mailto):[^>|]*\|([^>]*)>")
_BARE_LINK = re.compile(r"<(?:https?|mailto):[^>]*>")
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_MENTION_NAMED = re.compile(r"<@[!&]?[A-Z0-9]+\|([^>]*)>", re.I)
_MENTION = re.compile(r"<(?:@[!&]?[A-Z0-9]+|![a-z^]+(?:\|[^>]*)?|#[A-Z0-9]+)>", re.I)
_AT_NAME = re.compile(r"(?<![\w@.])@([A-Za-z][\w.\-]*)")
_SHORTCODE = re.compile(r"(?<!\w):(?=[^:\s]*[a-z+\-])[a-z0-9_+\-']+:(?!\w)", re.I)
_FORMAT = re.compile(r"(?<![\w*_~`])([*_~`])(?=\S)([^*_~`\n]*?\S)\1(?![\w*_~`])")
_LIST = re.compile(r"^\s*(?:[-*•·–—>+]+|\d{1,2}[.)]|\(?[a-z][.)])\s+", re.I)

# Filler that can stand anywhere (these phrases never carry the request's subject).
_ANYWHERE = (
    r"when(?:ever)? you (?:get|have|find) (?:a )?(?:sec|second|secs|min|minute|mo|moment|"
    r"chance|bit of time|spare minute)",
    r"when(?:ever)? you can",
    r"if you (?:can|could|have (?:a )?(?:sec|second|minute|moment|time)|don'?t mind|get a chance)",
    r"if (?:possible|poss|that'?s ok(?:ay)?)",
    r"no rush",
    r"no worries",
    r"at your convenience",
    r"thanks? (?:you )?(?:so much |a lot |in advance|a bunch)?",
    r"thanks in advance",
    r"(?:much )?appreciated?(?: it)?",
    r"please",
    r"pl[sz]",
    r"kindly",
    r"asap",
)
# Filler only at the start.
_LEADING = (
    r"(?:hey|hi|hello|hiya|yo|morning|good (?:morning|afternoon|evening)|ok(?:ay)?|so|um+|uh+|"
    r"alright|right)(?: there| team| all)?",
    r"quick (?:one|q|question|ask|thing|request)",
    r"qq",
    r"q",
    r"fyi",
    r"btw",
    r"also",
    r"one more",
    r"another one",
    r"small (?:ask|favou?r|request)",
    r"(?:can|could|would|will) (?:you|ya|u)(?: please)?(?: help me)?",
    r"would you mind",
    r"do you mind",
)
# Filler only at the end.
_TRAILING = (
    r"thx",
    r"ty",
    r"tia",
    r"cheers",
    r"thanks",
    r"thank you",
    r"for me",
    r"again",
    r"as usual",
    r"like (?:always|usual|last time)",
)
_SEP = r"[\s,;:!.…\-–—]*"
_ANYWHERE_RE = re.compile(rf"(?:^|(?<=[\s,;:(]))(?:{'|'.join(_ANYWHERE)})(?=$|[\s,;:!?.)…])", re.I)
_LEADING_RE = re.compile(rf"^(?:{'|'.join(_LEADING + _ANYWHERE)})(?=$|[\s,;:!?.…\-–—]){_SEP}", re.I)
_TRAILING_RE = re.compile(rf"{_SEP}\b(?:{'|'.join(_TRAILING + _ANYWHERE)})[\s!.…]*$", re.I)
_SPACE_PUNCT = re.compile(r"\s+([,;:!?.])")


def _strip_emoji(text: str) -> str:
    while True:  # chained shortcodes (":+1::skin-tone-2:") share their colons
        shorter = _SHORTCODE.sub(" ", text)
        if shorter == text:
            break
        text = shorter
    if text.isascii():  # no emoji: skip the (slow) emoji scan
        return text
    return str(emoji.replace_emoji(text, replace=" "))


_LEADING_MENTION = re.compile(r"^\s*(?:<[@!][^>]*>|@[A-Za-z][\w.\-]*)[\s,:;]*")
_TRAILING_MENTION = re.compile(r"(\S*)([\s,:;]*)(?:<[@!][^>]*>|@[A-Za-z][\w.\-]*)\s*$")
#: A mention after one of these words is who the request is about, not the bot addressed.
_ABOUT = frozenset("with for to from and about by on of cc at".split())


def _trailing(m: re.Match[str]) -> str:
    word, gap = m.group(1), m.group(2)
    return m.group(0) if word.lower() in _ABOUT and "," not in gap else word


def _edge_mentions(text: str) -> str:
    while True:
        shorter = _TRAILING_MENTION.sub(_trailing, _LEADING_MENTION.sub("", text), count=1)
        if shorter == text:
            return text
        text = shorter


def _mentions(text: str) -> str:
    """Mentions at either end go (the bot being addressed); inside, the name stays."""
    text = _SLACK_LINK.sub(r"\1", text)
    text = _BARE_LINK.sub(" ", text)
    text = _CHANNEL.sub(r"#\1", text)
    return _edge_mentions(text)


def _inner_mentions(text: str) -> str:
    text = _MENTION_NAMED.sub(r"\1", text)
    text = _MENTION.sub(" ", text)
    return _AT_NAME.sub(r"\1", text)


def _tidy(text: str) -> str:
    """Runs of white space as one space, none before punctuation, and no spaces, commas,
    semicolons, colons, dashes or ellipses at either end (nor "." or "!" at the start).

    String methods rather than regular expressions: every request goes through here twice.
    """
    text = " ".join(text.split())
    if " " in text and any(" " + p in text for p in ",;:!?."):
        text = _SPACE_PUNCT.sub(r"\1", text)
    return text.lstrip(_LEADING_PUNCT).rstrip(_TRAILING_PUNCT)


#: What _tidy strips at the start and at the end (spaces are single by then).
_LEADING_PUNCT = " ,;:.!-–—…"
_TRAILING_PUNCT = " ,;:-–—…"


_MARKUP = re.compile(r"[<@:*_~`]|[^\x00-\x7f]")
_EDGES = "\t\n ,;:.!-–—…"


@lru_cache(maxsize=65_536)
def normalise(text: str) -> str:
    """``text`` without mentions, emoji, list markers, formatting and filler; the text itself
    (tidied) when nothing would be left."""
    cleaned = text
    if _MARKUP.search(cleaned):  # most requests carry no markup: skip its passes
        cleaned = _FORMAT.sub(r"\2", _strip_emoji(_mentions(cleaned)))
    cleaned = _tidy(cleaned)
    while True:
        before = cleaned
        cleaned = _LIST.sub("", cleaned)
        if "@" in cleaned or "<" in cleaned:
            cleaned = _edge_mentions(cleaned)
        cleaned = _LEADING_RE.sub("", cleaned).strip(_EDGES)
        cleaned = _TRAILING_RE.sub("", cleaned).strip(_EDGES)
        if cleaned == before:
            break
    if "@" in cleaned or "<" in cleaned:
        cleaned = _inner_mentions(cleaned)
    cleaned = _tidy(_ANYWHERE_RE.sub(" ", cleaned))
    if cleaned.count(",") > 1:
        cleaned = re.sub(r"\s*,\s*,", ",", cleaned)
    return cleaned or _tidy(text)


_ASK = re.compile(
    r"^(?:(?:i(?:'d| would) like|i (?:need|want)|can i (?:get|have|see)|may i (?:get|have|see)|"
    r"could i (?:get|have|see)|let me (?:see|have|know))(?: to (?:see|get|have))?\s+|"
    r"(?:send|give|get|show|share|pull|bring|fetch|grab|find) (?:me|us)\s+(?!up\b))",
    re.I,
)
_END_PUNCT = re.compile(r"[\s.!?,;:]+$")


@lru_cache(maxsize=16_384)
def title(text: str) -> str:
    """A short, clean label for what ``text`` asks, e.g. "what's on my calendar today"."""
    label = normalise(text)
    while True:
        shorter = _ASK.sub("", label, count=1)
        if shorter == label or not shorter.strip():
            break
        label = shorter
    label = _END_PUNCT.sub("", label).strip() or normalise(text)
    first = label.split(" ", 1)[0]
    rest = first[1:].replace("'", "").replace("’", "")
    if first[:1].isupper() and rest.isalpha() and rest.islower() and first.lower() not in _NAMES:
        label = label[0].lower() + label[1:]
    if len(label) > TITLE_MAX:
        label = label[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"
    return label


#: Words that keep their capital at the start of a title.
_NAMES = frozenset({"i", "i'm", "i've", "i'd", "monday", "tuesday", "wednesday", "thursday"})

_CLUTTER_WORDS = re.compile(
    rf"^(?:{'|'.join(_LEADING)})\b|\b(?:{'|'.join(_ANYWHERE + _TRAILING[:6])})\b", re.I
)


def clutter(text: str) -> list[str]:
    """What in ``text`` a title should not carry: "mention", "emoji", "list marker",
    "filler"; empty when it is clean."""
    found = []
    if _MENTION.search(text) or _MENTION_NAMED.search(text) or _AT_NAME.search(text):
        found.append("mention")
    if _SHORTCODE.search(text) or (not text.isascii() and emoji.emoji_count(text)):
        found.append("emoji")
    if _LIST.match(text):
        found.append("list marker")
    if _CLUTTER_WORDS.search(text):
        found.append("filler")
    return found
