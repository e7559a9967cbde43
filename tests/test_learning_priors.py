"""Priors learned from the ratings, not set: how much a team predicts its members (per routing
and per style decision) and how often a kind's specialist is liked (issue 22)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bot.learning.bandit import (
    STYLE_OPTIONS,
    Params,
    State,
    beliefs,
    personality_decision,
    pool,
    route,
    update,
)
from bot.learning.bandit.posterior import learned_priors
from bot.learning.priors import priors_of

T0 = 1_700_000_000.0
LENGTHS = STYLE_OPTIONS["length"]
NAMES = ("assistant", "content_creator", "data_analyst", "marketing_maestro", "support_assistant")
SPECIALISTS = {
    "data": "data_analyst",
    "marketing": "marketing_maestro",
    "support": "support_assistant",
    "content": "content_creator",
    "general": "assistant",
}


def rate(
    team: State,
    member: State,
    decision: str,
    liked: str,
    options: tuple[str, ...],
    default: str | None = None,
    n: int = 4,
) -> None:
    """``member`` 👍s ``liked`` and 👎s every other option, ``n`` times each."""
    for _ in range(n):
        for option in options:
            pick = (decision, option, default) if default is not None else (decision, option)
            update(team, member, pick, +1 if option == liked else -1, now=T0)


def team_liking(likes: list[str], decision: str = "length") -> State:
    team = State("team")
    for i, liked in enumerate(likes):
        rate(team, State(f"user:{i}"), decision, liked, LENGTHS)
    return team


def test_a_team_that_shares_its_taste_gets_a_strong_prior_one_that_does_not_a_weak_one() -> None:
    sharing = team_liking(["short"] * 6)
    apart = team_liking(["short", "medium", "long", "short", "medium", "long"])
    strong, _ = learned_priors(sharing, "length", now=T0)
    weak, _ = learned_priors(apart, "length", now=T0)
    assert strong > 0.8 and weak < 0.3
    # and a newcomer follows the team as much as its members do
    assert beliefs(sharing, State(), "length", now=T0)["short"] > 0.75
    assert max(beliefs(apart, State(), "length", now=T0).values()) < 0.45


def test_with_no_ratings_the_prior_is_weak_every_share_alike() -> None:
    params = Params()
    share, head = learned_priors(State(), "length", now=T0)
    assert share == pytest.approx(sum(params.share_grid) / len(params.share_grid))
    assert beliefs(State(), State(), "length", now=T0) == pytest.approx(
        dict.fromkeys(LENGTHS, 1 / 3)
    )
    _, head = learned_priors(State(), personality_decision("data"), now=T0)
    assert min(params.head_start_grid) < head < max(params.head_start_grid)


def test_each_decision_has_its_own_share() -> None:
    """A team that shares which personality answers but not answer length: a strong prior
    for routing, a weak one for length (one constant for both was the bug)."""
    team = State("team")
    lengths = ["short", "medium", "long", "short", "medium", "long"]
    decision = personality_decision("data")
    for i, length in enumerate(lengths):
        member = State(f"user:{i}")
        rate(team, member, "length", length, LENGTHS)
        rate(team, member, decision, "marketing_maestro", NAMES, default="data_analyst")
    routing, _ = learned_priors(team, decision, now=T0)
    by_length, _ = learned_priors(team, "length", now=T0)
    assert routing > 0.8 > 0.3 > by_length
    assert {p.family: round(p.share, 1) for p in priors_of(team, now=T0)}.keys() == {
        "personality",
        "length",
    }


def specialists_team(liked: dict[str, str]) -> State:
    """Six members, each liking ``liked[kind]`` for every kind, apart from their own quirks."""
    team = State("team")
    rng = random.Random(4)
    for i in range(6):
        member = State(f"user:{i}")
        for kind, favourite in liked.items():
            own = favourite if rng.random() < 0.5 else rng.choice(NAMES)
            decision = personality_decision(kind)
            rate(team, member, decision, own, NAMES, default=SPECIALISTS[kind], n=2)
    return team


def test_how_often_the_specialist_is_liked_is_learned() -> None:
    liked = specialists_team(SPECIALISTS)
    shifted = {kind: NAMES[(NAMES.index(s) + 1) % len(NAMES)] for kind, s in SPECIALISTS.items()}
    not_liked = specialists_team(shifted)
    _, high = learned_priors(liked, personality_decision("data"), now=T0)
    _, low = learned_priors(not_liked, personality_decision("data"), now=T0)
    assert high > 5 and low < 1.5
    # a kind nobody rated yet: the specialist is the favourite as often as for the others
    fresh = personality_decision("other")
    p_liked = beliefs(liked, State(), fresh, NAMES, default="assistant", now=T0)["assistant"]
    p_not = beliefs(not_liked, State(), fresh, NAMES, default="assistant", now=T0)["assistant"]
    assert p_liked > 0.5 > 0.25 > p_not


def test_fixed_constants_when_priors_are_not_learned() -> None:
    params = Params(learn_priors=False, team_share=0.7)
    apart = State("team")
    for i, liked in enumerate(["short", "medium", "long"] * 2):
        member = State(f"user:{i}")
        for _ in range(4):
            for option in LENGTHS:
                update(
                    apart,
                    member,
                    ("length", option),
                    +1 if option == liked else -1,
                    now=T0,
                    params=params,
                )
    assert learned_priors(apart, "length", now=T0, params=params) == (0.7, 1.0)


def _routed(team: State, user: State, decision: str, rng: random.Random) -> str:
    choice = route(team, user, decision, NAMES, default="data_analyst", now=T0, rng=rng)
    assert choice is not None
    return choice.option


def test_routing_samples_untried_personalities_and_follows_evidence() -> None:
    """A team that has rated nothing: the deployment's default (None). Once it has, the
    first answer of a kind is not always the specialist's; once the person's ratings show a
    favourite, routing mostly follows it."""
    decision = personality_decision("data")
    rng = random.Random(3)
    assert route(State(), State(), decision, NAMES, default="data_analyst", rng=rng) is None
    rated = State("team")  # a team that rated something else, nothing about data yet
    rate(rated, State("user:bo"), "length", "short", LENGTHS)
    first = Counter(_routed(rated, State(), decision, rng) for _ in range(2000))
    assert first.most_common(1)[0][0] == "data_analyst"
    assert sum(n for o, n in first.items() if o != "data_analyst") > 20
    team, ada = State("team"), State("user:ada")
    rate(team, ada, decision, "content_creator", NAMES, default="data_analyst", n=5)
    later = Counter(_routed(team, ada, decision, rng) for _ in range(500))
    assert later["content_creator"] > 0.9 * 500


def test_learned_priors_survive_a_round_trip() -> None:
    team = team_liking(["short"] * 6)
    again = State.from_dict(team.to_dict())
    assert learned_priors(again, "length", now=T0) == pytest.approx(
        learned_priors(team, "length", now=T0)
    )


def test_a_team_rebuilt_from_its_members_is_the_team_they_taught() -> None:
    """``pool``: a team state kept before the sums were per grid point is rebuilt from its
    members' states (Preferences does so on load), and it is the same team."""
    team = State("team")
    members = [State(f"user:{i}") for i in range(4)]
    decision = personality_decision("data")
    for member, liked in zip(members, ["short", "short", "long", "short"], strict=True):
        rate(team, member, "length", liked, LENGTHS)
        rate(team, member, decision, "content_creator", NAMES, default="data_analyst", n=2)
    rebuilt = State("team")
    for member in members:
        pool(rebuilt, member, defaults={decision: "data_analyst"}, options={decision: NAMES})
    # style: the same sums exactly; routing: close (votes were credited while the options a
    # member had rated were still growing, the rebuild sees them all)
    for d, rel in (("length", 1e-6), (decision, 0.2)):
        got, want = learned_priors(rebuilt, d, now=T0), learned_priors(team, d, now=T0)
        assert got == pytest.approx(want, rel=rel)
        newcomer = beliefs(rebuilt, State(), d, now=T0)
        assert newcomer == pytest.approx(beliefs(team, State(), d, now=T0), abs=rel / 2)
    assert rebuilt.votes == pytest.approx(team.votes)
