"""Profile extraction by the rules alone: precision and recall per field.

    python -m bench.extraction [--errors] [--part dev|held-out|all]

Runs the rules Chorus always applies (``bot.memory.extract.rule_facts`` for profile facts,
``bot.learning.style_requests.read_style`` for requests about how to answer) on the labelled
corpus of ``bench/extraction_data.py`` and compares, per field, the values found with the
values labelled. A found value counts as right when it equals a labelled one of the same
field after normalising: case, punctuation and articles ("the", "a", "my", "our", "to") do
not matter, nor, for the communication style, the words naming answers ("answers in
German" is "German"). ``timezone`` and the four style dimensions must match exactly.

The corpus's held-out part (every fifth statement) was never looked at while tuning the
rules: its figures are printed apart from the part the rules were tuned on. ``--errors``
lists the tuning part's mistakes (never the held-out part's). Targets: precision ≥ 0.95 and
recall ≥ 0.85 per field; every field's counts pooled are printed too, steadier where a
field has few labels. Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench.extraction_data import FIELDS, Statement, dev, held_out
from bot.learning.style_requests import read_style
from bot.memory.extract import rule_facts

PRECISION_TARGET = 0.95
RECALL_TARGET = 0.85

_ARTICLES = {"the", "a", "an", "my", "our", "to"}
#: Words that name answers or ask for them, not what is asked of them.
_STYLE_WORDS = _ARTICLES | {
    "answer",
    "answers",
    "reply",
    "replies",
    "response",
    "responses",
    "explanation",
    "explanations",
    "explain",
    "with",
    "in",
    "that",
    "are",
    "please",
}
_EXACT = {"timezone", "length", "formality", "structure", "emoji"}

Found = dict[str, set[str]]


def extract(text: str) -> Found:
    """What the rules find in ``text``, per bench field."""
    found: Found = {}
    for fact in rule_facts(text):
        name = f"team.{fact.field}" if fact.team else fact.field
        found.setdefault(name, set()).add(fact.value)
    for decision, option in read_style(text).options.items():
        found.setdefault(decision, set()).add(option)
    return found


def normalise(name: str, value: str) -> str:
    if name in _EXACT:
        return value.strip().lower()
    drop = _STYLE_WORDS if name == "communication_style" else _ARTICLES
    words = re.findall(r"[\w+#%'’-]+", value.lower().replace("’", "'"))
    return " ".join(w for w in words if w not in drop)


@dataclass
class Score:
    right: int = 0
    found: int = 0
    labelled: int = 0

    @property
    def precision(self) -> float:
        return self.right / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.labelled if self.labelled else 1.0


@dataclass
class Result:
    scores: dict[str, Score] = field(default_factory=lambda: {f: Score() for f in FIELDS})
    #: (text, field, what was found but not labelled, what was labelled but not found)
    errors: list[tuple[str, str, set[str], set[str]]] = field(default_factory=list)


def score(statements: Sequence[Statement], extractor: Callable[[str], Found] = extract) -> Result:
    result = Result()
    for st in statements:
        found = extractor(st.text)
        for name in FIELDS:
            got = {normalise(name, v) for v in found.get(name, ())}
            want = {normalise(name, v) for v in st.labels.get(name, ())}
            sc = result.scores[name]
            sc.right += len(got & want)
            sc.found += len(got)
            sc.labelled += len(want)
            if got != want:
                result.errors.append((st.text, name, got - want, want - got))
        for name in set(found) - set(FIELDS):
            raise ValueError(f"the extractor found an unknown field {name!r}")
    return result


def _pooled(result: Result) -> Score:
    """Every field's counts together: steadier than a field with a handful of labels."""
    scores = result.scores.values()
    return Score(
        right=sum(s.right for s in scores),
        found=sum(s.found for s in scores),
        labelled=sum(s.labelled for s in scores),
    )


def _table(title: str, result: Result) -> list[str]:
    lines = [title, f"  {'field':<22}{'labelled':>9}{'found':>7}{'precision':>11}{'recall':>8}"]
    for name, sc in [*result.scores.items(), ("all fields (pooled)", _pooled(result))]:
        miss = "" if sc.precision >= PRECISION_TARGET and sc.recall >= RECALL_TARGET else "  ✗"
        lines.append(
            f"  {name:<22}{sc.labelled:>9}{sc.found:>7}{sc.precision:>11.3f}{sc.recall:>8.3f}{miss}"
        )
    return lines


def _figures(result: Result) -> dict[str, dict[str, float]]:
    return {
        name: {"precision": round(sc.precision, 3), "recall": round(sc.recall, 3)}
        for name, sc in result.scores.items()
    }


def _worst(result: Result) -> tuple[float, float]:
    scores = result.scores.values()
    return min(s.precision for s in scores), min(s.recall for s in scores)


def _print_errors(errors: Iterable[tuple[str, str, set[str], set[str]]]) -> None:
    for text, name, extra, missing in errors:
        parts = []
        if extra:
            parts.append(f"wrong {sorted(extra)}")
        if missing:
            parts.append(f"missed {sorted(missing)}")
        print(f"  {name:<20} {'; '.join(parts):<50} {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list the tuning part's mistakes")
    parser.add_argument("--part", choices=("dev", "held-out", "all"), default="all")
    args = parser.parse_args()
    parts = {"dev": dev(), "held-out": held_out()}
    if args.part != "all":
        parts = {args.part: parts[args.part]}
    results = {name: score(statements) for name, statements in parts.items()}
    for name, result in results.items():
        title = f"{name} ({len(parts[name])} statements)"
        print("\n".join(_table(title, result)))
    if args.errors and "dev" in results:
        print("mistakes on the tuning part:")
        _print_errors(results["dev"].errors)
    figures: dict[str, object] = {}
    for name, result in results.items():
        worst_p, worst_r = _worst(result)
        key = name.replace("-", "_")
        pooled = _pooled(result)
        figures[key] = {
            "statements": len(parts[name]),
            "min_precision": round(worst_p, 3),
            "min_recall": round(worst_r, 3),
            "pooled_precision": round(pooled.precision, 3),
            "pooled_recall": round(pooled.recall, 3),
            "fields": _figures(result),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
