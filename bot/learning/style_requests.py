"""What people say about how to answer: "keep answers short", "no emoji", "use bullet points".

:func:`read_style` finds, clause by clause (:mod:`bot.memory.clauses`), the requests a message
makes about Chorus's answers in general, and maps each onto a style decision of the learner
(:data:`bot.learning.bandit.STYLE_OPTIONS`: ``length``, ``formality``, ``structure``,
``emoji``). What the person asks for beyond those four ("answer in German", "with code
examples", "no jargon") is :attr:`StyleRequest.rest`, which the profile keeps as their
communication style.

Precision matters more than reach here: a request fixes how every later answer is written, so
a false one is worse than a missed one (which ratings can still teach). Hence:

* A clause is a request only when it is framed as one: an imperative ("keep it short", "no
  emoji", "stop using lists"), a wish of the person's own ("I prefer bullet points", "I don't
  need long answers"), a complaint about the answers ("way too long"; praise such as "that was
  detailed, thanks" is not one), a bare request ("short answers please") or a polite question
  ("can you be less formal?"). Real questions ("should I keep answers short?"), statements
  about others ("my boss likes short answers") and hypotheticals are not.
* For the four decisions every word of the part must be one people use about answers
  (:data:`_VOCABULARY`, typos within one edit forgiven): a request about one piece of work
  ("summarise this thread in bullets", "write a short bio", "more detail on option 2")
  names that work, and a word outside the vocabulary is what gives it away.
* A negation asks for the opposite ("don't use bullet points" is prose, "too long" is short);
  two negations cancel ("don't hold back on detail").
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

import Stemmer

from bot.learning.bandit.decisions import STYLE_OPTIONS
from bot.memory.clauses import Clause, clauses

__all__ = ["ClauseStyle", "StyleRequest", "clause_style", "names_a_decision", "read_style"]

_STEMMER = Stemmer.Stemmer("english")

# -- what each option is called ---------------------------------------------------------------

#: (decision, option, pattern): longer phrases first, each matched once per part.
_CUES: list[tuple[str, str, str]] = [
    ("length", "medium", r"medium(?:[- ]length)?|a paragraph or two|not too (?:long|short)"),
    ("length", "medium", r"moderate(?:ly)?(?:[- ]length)?"),
    ("length", "short", r"(?:straight )?to the point|tldr|one[- ]liners?|short and sweet"),
    ("length", "short", r"just the answers?|quick answers?|fewer words|bite[- ]sized"),
    ("length", "long", r"more (?:explanation|context|depth)|in[- ]depth|go deeper|dig deeper"),
    ("length", "short", r"short(?:er)?|brief(?:er|ly)?|concise(?:ly)?|succinct(?:ly)?|terse"),
    ("length", "long", r"detail(?:s|ed)?|long(?:er)?|thorough(?:ly)?|depth|elaborate"),
    ("length", "long", r"comprehensive|essays?|wordy|verbose|lengthy"),
    ("formality", "casual", r"like a friend|laid[- ]back|relaxed|chill|casual(?:ly)?"),
    ("formality", "casual", r"informal(?:ly)?|friendly"),
    ("formality", "formal", r"formal(?:ly)?|professional(?:ly)?|stiff|business[- ]like"),
    ("formality", "neutral", r"neutral"),
    (
        "structure",
        "bullets",
        r"bullet(?:ed)?[- ]?(?:points?|lists?|form)|bullets?|point form|lists?|listicles?",
    ),
    ("structure", "prose", r"prose|full sentences|paragraphs|flowing text"),
    ("emoji", "on", r"emojis?|emoticons?|smileys?"),
]
_CUE = [(d, o, re.compile(rf"\b(?:{p})\b", re.I)) for d, o, p in _CUES]

#: What a negated option asks for instead (none: no single opposite).
_OPPOSITE = {
    ("length", "short"): "long",
    ("length", "long"): "short",
    ("formality", "formal"): "casual",
    ("formality", "casual"): "formal",
    ("structure", "bullets"): "prose",
    ("structure", "prose"): "bullets",
    ("emoji", "on"): "off",
}
#: Words before an option that turn it around ("no emoji", "too long", "lists over prose").
_NEGATOR = re.compile(
    r"\b(?:no|not|don't|doesn't|never|without|stop|quit|less|fewer|skip|drop|avoid|hate|"
    r"dislike|can't stand|too|over|instead of|rather than|turn off|cut|lose|remove|hold back|"
    r"get rid of|tone down|enough with|ditch|nix)\b",
    re.I,
)
#: Words after an option that turn it around ("emojis are annoying").
_AFTER_NEGATOR = re.compile(
    r"\b(?:annoying|distracting|hard to \w+|unnecessary|overkill|too much|not needed|"
    r"not necessary|get in the way|a lot to read|too many)\b",
    re.I,
)
#: Said to mean "X is fine": not a negation.
_NOT_NEGATION = re.compile(r"\b(?:don't|do not|doesn't|wouldn't) mind\b|\bno problem\b", re.I)

# -- what else people ask of answers (the profile's communication style) -----------------------

_LANGUAGES = (
    "english german french spanish portuguese italian dutch polish swedish danish norwegian "
    "finnish japanese chinese mandarin cantonese korean hindi arabic russian turkish greek "
    "hebrew ukrainian czech romanian hungarian indonesian vietnamese thai"
)
_REST_WORDS = (
    rf"{'|'.join(_LANGUAGES.split())}|examples|code samples|code snippets|code|jargon|acronyms|"
    r"technical terms|step[- ]by[- ]step|tables|markdown|sources|citations|references|links|"
    r"analogies|simple|simpler|simply|plain|direct|precise|eli5|like i'm (?:five|5)|diagrams|"
    r"headings|numbers"
)
_REST_CUE = re.compile(rf"\b(?:{_REST_WORDS})\b", re.I)
#: Where a wish about answers starts: what is before it is only the asking.
_REST_FRAME = re.compile(
    r"^(?:(?:please|pls|plz|kindly|always|from now on|going forward|in future|also)\s+)*"
    r"(?:i(?:'d| would)?\s+(?:really\s+|much\s+)?(?:prefer|like|love|want|rather have)\s+|"
    r"(?:answer|reply|respond|write|explain|be|keep it|keep things|use|include|add|give me|"
    r"show)\s+)",
    re.I,
)
#: Where a communication style may start after its frame: a wish about answers, not a task.
_REST_OBJECT = re.compile(
    rf"^(?:(?:more|less|lots of|plenty of|some|a lot of)\s+)?(?:answers?|replies|responses|"
    rf"explanations?|things|everything|in|with|no|fewer|less|more|{_REST_WORDS})\b",
    re.I,
)
_REST_FILLER = re.compile(
    r"\s+(?:please|pls|plz|thanks|thank you|from now on|going forward|in future|always|"
    r"even (?:when|if) .*|when(?:ever)? (?:you can|possible)|if (?:you can|possible)|"
    r"where possible|with me|for me)$",
    re.I,
)

# -- when a clause is a request ----------------------------------------------------------------

_POLITE = re.compile(
    r"^(?:(?:can|could|would|will) you(?: please| kindly)?(?: mind)?|would you mind|"
    r"is it possible (?:for you )?to|would it be possible (?:for you )?to|can we|could we|"
    r"(?:can|could) i (?:get|have|ask you to))\s+",
    re.I,
)
#: Words a request about answers is made of (stemmed); anything else names something else.
_WORDS = """i i'd i'm i've i'll me myself you your you're yours it it's that that's they they're
        them things thing everything stuff a an the some any more less fewer much way too so
        very really bit little lot lots of and or but not no don't dont do does never without
        with in on for to as over instead than rather just only always generally usually
        please pls plz kindly thanks thank ty thx lol haha ok okay now from going forward
        onwards future again anymore when possible be being is are was am were been keep make
        use using give write answer reply respond go stop start try need want like love prefer
        would could can will mind fine good great better best perfect enough easier easy
        read follow skim hard annoying hate dislike fan help work feel free add drop skip cut
        avoid quit remove turn off tone style format formatting form length words sentences
        answers replies responses explanations explanation messages text writing one all
        into get talk speak fun hold back find stand can't these those here wordy tone down
        point form full sentence paragraph way overkill distracting unnecessary necessary
        needed aren't isn't there short long have by should must ought needs""".split()
_VOCABULARY = frozenset(_STEMMER.stemWords(_WORDS))
_TYPO_TARGETS = sorted({w for w in _WORDS if len(w) >= 5})

#: How a request may start (after "please", "just", "always", "from now on", a polite "can
#: you"); a part starting any other way states something else.
_FRAME = re.compile(
    r"^(?:(?:please|pls|plz|kindly|just|always|also|so|and|then|from now on|going forward|"
    r"in future|in the future|generally|ok|okay|but)\s+)*"
    r"(?:(?:keep|make|be|use|stop|don't|do not|dont|never|no|give|write|answer|reply|respond|"
    r"skip|drop|avoid|add|go|include|format|try|less|fewer|more|much|way|too|cut|ditch|lose|"
    r"remove|tone|turn|quit|feel free|talk|speak|enough|without|not|get rid|elaborate|"
    r"explain)\b|"
    r"i(?:'d| would| do|'m| am)?\s+(?:not\s+|really\s+|much\s+|definitely\s+|also\s+|"
    r"don't\s+|do not\s+|can't\s+|just\s+)*(?:prefer|like|love|want|need|hate|dislike|"
    r"rather|stand|find|a fan|fan|mind)\b|"
    r"no need\b|a |an |the (?!answer|repl|respons|explanation|message|tone)|some )",
    re.I,
)
#: A sentence about the answers themselves ("your answers are way too long", "that's too
#: formal") asks for something only as a complaint or a comparison: "that was detailed,
#: thanks" is praise, not a request for detail from now on.
_ABOUT_ANSWERS = re.compile(
    r"^(?:(?:your|the|these|those|my)\s+(?:answers?|replies|reply|responses?|explanations?|"
    r"messages?|tone)|that|that's|that was|it's|it is|it was|this is|this was|they're|they are)\b",
    re.I,
)
_COMPLAINT = re.compile(
    r"\b(?:too|way|so|not|no|less|fewer|more|shorter|longer|briefer|should|could|need to|"
    r"needs to|must|has to|have to|ought to|would be better)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class StyleRequest:
    """What one message asks of Chorus's answers.

    ``options``: the option asked for, per style decision. ``rest``: what else is asked of
    answers ("answers in German"), in the person's words; empty if nothing.
    """

    options: dict[str, str] = field(default_factory=dict)
    rest: str = ""

    def __bool__(self) -> bool:
        return bool(self.options or self.rest)


@functools.lru_cache(maxsize=4096)
def _known(word: str) -> bool:
    """Whether ``word`` is one of the vocabulary's, allowing one slip of the keyboard in a
    word of five letters or more ("anwsers")."""
    stem = _STEMMER.stemWord(word)
    if stem in _VOCABULARY or word in _VOCABULARY:
        return True
    if len(word) < 5:
        return False
    return bool(difflib.get_close_matches(word, _TYPO_TARGETS, n=1, cutoff=0.8))


def _negated(before: str, after: str) -> bool:
    """Whether the words around an option turn it around (an odd number of negations)."""
    before = _NOT_NEGATION.sub(" ", before)
    count = len(_NEGATOR.findall(" ".join(before.split()[-5:])))
    count += len(_AFTER_NEGATOR.findall(after))
    return count % 2 == 1


def _options(part: str) -> dict[str, str] | None:
    """The options one part asks for; None when it holds a word that is not about answers."""
    low = part.lower()
    found: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    for decision, option, pattern in _CUE:
        for m in pattern.finditer(low):
            if any(m.start() < end and start < m.end() for start, end in spans):
                continue
            spans.append((m.start(), m.end()))
            if _negated(low[: m.start()], low[m.end() :]):
                chosen = _OPPOSITE.get((decision, option))
            else:
                chosen = option
            if chosen is not None and decision not in found:
                found[decision] = chosen
    if not found:
        return {}
    rest = low
    for start, end in sorted(spans, reverse=True):
        rest = rest[:start] + " " + rest[end:]
    words = re.findall(r"[a-z][a-z'-]*|\d+", rest)
    if not all(_known(w) or _REST_CUE.fullmatch(w) for w in words):
        return None
    return found


def _rest(part: str, *, continued: bool = False) -> str:
    """What a part asks of answers beyond the four decisions ("answers in German"), or "".

    ``continued``: an earlier part of the clause was a request, so this one may go on with
    it without a frame of its own ("detailed answers please, with sources")."""
    frame = _REST_FRAME.match(part)
    if frame is None:
        starts = (
            r"^(?:no|more|less|fewer)\s" if not continued else r"^(?:no|more|less|fewer|with|in)\s"
        )
        if not re.match(starts, part, re.I):
            return ""
        value = part
    else:
        value = part[frame.end() :]
        if re.match(r"^(?:it|this|that|these)\b", value, re.I) and not re.match(
            r"^keep", frame.group(0), re.I
        ):
            return ""  # "explain it more simply": about one answer
    for _decision, _option, cue in _CUE:
        value = cue.sub(" ", value)
    value = re.sub(r"\s+", " ", value).strip(" ,.!")
    value = re.sub(r"^(?:things|everything|it|stuff)\s+", "", value, flags=re.I)
    for _ in range(3):
        value = _REST_FILLER.sub("", value).strip(" ,.!")
    if not _REST_CUE.search(value) or not _REST_OBJECT.match(value):
        return ""
    value = re.sub(r"^(?:and|,)\s+|\s+(?:and|with|in)$", "", value, flags=re.I)
    if len(value.split()) > 10:
        return ""
    # as the profile says it: "Prefers answers in German", "Prefers direct answers"
    if re.match(r"^(?:in|with|without|like)\b", value, re.I):
        return f"answers {value}"
    if re.fullmatch(r"(?:(?:simple|simpler|plain|direct|precise)(?:\s+and\s+|\s*,\s*|$))+", value):
        return f"{value} answers"
    return value


@dataclass(frozen=True, slots=True)
class ClauseStyle:
    """What one clause asks of answers, and its other parts: "I'm a sales rep at HubSpot,
    casual tone is fine" asks for a casual tone and also says "I'm a sales rep at HubSpot"."""

    request: StyleRequest
    other: str = ""


def clause_style(clause: Clause) -> ClauseStyle | None:
    """What ``clause`` asks of answers, or None when it is not a request about them."""
    text = clause.text
    polite = _POLITE.match(text)
    if clause.question and polite is None:
        return None
    if polite is not None:
        text = text[polite.end() :]
    options: dict[str, str] = {}
    rests: list[str] = []
    other: list[str] = []
    parts = [p.strip() for p in re.split(r"\s*,\s*|\s+(?:and|but|&)\s+", text) if p.strip()]
    if parts and _ABOUT_ANSWERS.match(parts[0]) and not _COMPLAINT.search(text):
        return None  # "your answers are great, short and clear": praise, not a request
    framed = False
    for i, part in enumerate(parts):
        if (i == 0 or not framed) and _framed(part):
            framed = True
        found = _options(part) if framed or _bare(part) else None
        if found:
            for decision, option in found.items():
                options.setdefault(decision, option)
        rest = _rest(part, continued=bool(options or rests))
        if rest:
            rests.append(rest)
        if not found and not rest:
            other.append(part)
    if not options and not rests:
        return None
    return ClauseStyle(StyleRequest(options, ", ".join(rests)), ", ".join(other))


def _framed(part: str) -> bool:
    """Whether ``part`` is put as a request (see :data:`_FRAME`, :data:`_ABOUT_ANSWERS`)."""
    if _ABOUT_ANSWERS.match(part):
        return bool(_COMPLAINT.search(part))
    return bool(_FRAME.match(part))


def _bare(part: str) -> bool:
    """A request without a frame: the options alone ("short answers please", "bullets pls",
    "emojis are annoying"), which :func:`_options` then checks word by word."""
    low = part.lower()
    return any(p.match(low) for _d, _o, p in _CUE) or low.startswith(("point form", "full sent"))


def names_a_decision(text: str) -> bool:
    """Whether ``text`` names an option of a style decision ("short", "bullet points")."""
    return any(p.search(text) for _d, _o, p in _CUE)


def read_style(text: str) -> StyleRequest:
    """The requests ``text`` makes about how to answer (nothing if it makes none). Where two
    clauses ask different options of one decision, the first wins."""
    options: dict[str, str] = {}
    rests: list[str] = []
    for clause in clauses(text):
        found = clause_style(clause)
        if found is None:
            continue
        for decision, option in found.request.options.items():
            if decision in STYLE_OPTIONS and option in STYLE_OPTIONS[decision]:
                options.setdefault(decision, option)
        if found.request.rest:
            rests.append(found.request.rest)
    return StyleRequest(options, ", ".join(rests))
