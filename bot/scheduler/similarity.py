"""Which of a person's requests are the same kind of request: word features and clustering.

A request becomes the set of its content words, stemmed (Snowball English, through
PyStemmer), without stop words, request filler ("please", "can you send me") or numbers, so
"weekly metrics summary please", "can I get the metrics summary for this week" and "send me
last week's metrics" share ``metric`` and ``week``. Words about time ("week", "monday",
"daily") weigh half: they say when, not what. Each request is a unit vector over the person's
own vocabulary; two requests are alike by the cosine of their vectors.

:func:`cluster` groups one person's requests: each joins the most similar group (cosine with
the group's centroid) at or above the threshold, else starts one; then every request is
placed again against the final centroids, so the result depends little on the order. It costs
microseconds per request and needs no model, so mining 10,000 people takes seconds; where
sentence embeddings are at hand, :func:`cluster` accepts them instead of word features.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import Stemmer

__all__ = ["Matrix", "cluster", "terms", "vectors", "TIME_WEIGHT"]

#: Rows of float32 unit vectors, one per request.
Matrix = npt.NDArray[np.float32]

#: Weight of a word about time ("weekly", "monday", "today") against a content word's 1.
TIME_WEIGHT = 0.5

_STOP = frozenset(
    """a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't
    what what's when when's where where's which while who who's whom why why's with won't would
    wouldn't you you'd you'll you're you've your yours yourself yourselves
    please pls plz thanks thank thx hey hi hello ok okay just quick quickly again also maybe
    kindly get got give gimme send show share pull bring fetch grab need want like wanna
    let tell help mind us ask asking usual usually one anything something many much make made
    put together needs needed wants look looks looking see able go going""".split()
)
_TIME = frozenset(
    """week weeks weekly weekend today todays tonight tomorrow yesterday day days daily
    morning afternoon evening night month months monthly year yearly annual quarter quarterly
    last this next current previous past latest new recent now monday mondays tuesday
    tuesdays wednesday wednesdays thursday thursdays friday fridays saturday saturdays sunday
    sundays mon tue tues wed thu thurs fri sat sun january february march april may june july
    august september october november december jan feb mar apr jun jul aug sep sept oct nov
    dec eod eow am pm""".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_NOISE = re.compile(r"<[^>\s]*>|https?://\S+|`[^`]*`")
_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=65_536)
def _term(word: str) -> tuple[str, float] | None:
    """The stem of one lowercased word and its weight, or None for a stop word."""
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word in _STOP or len(word) < 2:
        return None
    stem = _root(_STEMMER.stemWord(_BRITISH.sub(r"\1iz\2", word)))
    if stem in _STOP:
        return None
    return stem, TIME_WEIGHT if word in _TIME or stem in _TIME else 1.0


#: "-ise" spellings (of a word of four letters or more before it) as "-ize".
_BRITISH = re.compile(r"^(\w{4,})is(e|es|ed|ing|ation|ations)$")


def _root(stem: str) -> str:
    """One stem for a word and the words made from it: Snowball leaves "summary" as
    "summari" and "summarize" as "summar", "priority" and "prioritize" as "prioriti" and
    "priorit", "organization" as "organiz"."""
    if len(stem) >= 5 and stem.endswith("i"):
        return stem[:-1]
    if len(stem) >= 6 and stem.endswith("iz"):
        return stem[:-2]
    return stem


@lru_cache(maxsize=65_536)
def terms(text: str) -> dict[str, float]:
    """The weighted stems of a request (empty when it has no content word)."""
    found: dict[str, float] = {}
    for word in _WORD.findall(_NOISE.sub(" ", text.lower())):
        parts = [t for t in map(_term, word.split("-")) if t is not None]
        if not parts and "-" in word:
            # A compound of stop words ("one-on-one", "follow-up") is a content word whole.
            parts = [(word, 1.0)]
        for stem, weight in parts:
            found[stem] = weight
    return found


def vectors(texts: Sequence[str]) -> tuple[Matrix, list[str]]:
    """Unit vectors of ``texts`` over their own vocabulary, and that vocabulary.

    A text without a content word gets a zero row (similar to nothing).
    """
    bags = [terms(t) for t in texts]
    vocabulary: dict[str, int] = {}
    for bag in bags:
        for term in bag:
            vocabulary.setdefault(term, len(vocabulary))
    x = np.zeros((len(texts), max(len(vocabulary), 1)), dtype=np.float32)
    for row, bag in enumerate(bags):
        for term, weight in bag.items():
            x[row, vocabulary[term]] = weight
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x, list(vocabulary)


def cluster(x: Matrix, threshold: float) -> list[list[int]]:
    """Groups of row indices of ``x`` (unit rows) that are the same kind of request.

    Rows are taken in order (oldest first, for the miner). Zero rows stay alone. Groups are
    listed by their first member.
    """
    n = x.shape[0]
    if n == 0:
        return []
    sums = np.zeros((n, x.shape[1]), dtype=np.float32)
    norms = np.ones(n, dtype=np.float32)
    k = 0
    for row in x:
        if k:
            sims = sums[:k] @ row
            sims /= norms[:k]
            best = int(sims.argmax())
            if sims[best] >= threshold:
                total = sums[best]
                total += row
                norms[best] = max(float(np.sqrt(total @ total)), 1e-9)
                continue
        sums[k] = row
        norms[k] = max(float(np.sqrt(row @ row)), 1e-9)
        k += 1
    # Second pass: each row to its most similar final centroid (or alone, below threshold).
    # The first pass left each group's sum of its rows: normalised, its centroid.
    centres = sums[:k].copy()
    lengths = np.linalg.norm(centres, axis=1, keepdims=True)
    np.divide(centres, lengths, out=centres, where=lengths > 0)
    sims = x @ centres.T
    best = np.argmax(sims, axis=1)
    keep = sims[np.arange(n), best] >= threshold
    labels = np.where(keep, best, -1)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label if label >= 0 else -1 - i, []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])
