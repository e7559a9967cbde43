"""The preference learner: hierarchical Thompson sampling on Beta posteriors (team → user)."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter

import pytest

from bot.learning.bandit import (
    STYLE_OPTIONS,
    Choice,
    Params,
    State,
    apply_style,
    beta_interval,
    choose,
    choose_style,
    explain,
    personality_decision,
    posterior,
    prune,
    reset,
    retract,
    style_defaults,
    update,
)
from bot.personality import Style

DAY = 86_400.0
T0 = 1_700_000_000.0
LENGTHS = STYLE_OPTIONS["length"]


def mean(team: State | None, user: State | None, option: str, default: str | None = None) -> float:
    alpha, beta = posterior(team, user, "length", option, default=default, now=T0)
    return alpha / (alpha + beta)


def vote(team: State | None, user: State | None, option: str, reward: int, n: int = 1) -> None:
    for _ in range(n):
        update(team, user, ("length", option), reward, now=T0)


def picks(team: State | None, user: State | None, n: int = 400, seed: int = 7) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(choose(team, user, "length", LENGTHS, rng, now=T0).option for _ in range(n))


def test_posterior_moves_the_right_way() -> None:
    user = State("user:ada")
    before = mean(None, user, "short")
    vote(None, user, "short", +1)
    assert mean(None, user, "short") > before
    vote(None, user, "long", -1)
    assert mean(None, user, "long") < before
    assert mean(None, user, "medium") == pytest.approx(before)


def test_unseen_options_start_from_the_prior_and_the_default_has_a_head_start() -> None:
    assert mean(None, None, "short") == pytest.approx(0.5)
    assert mean(None, None, "short", default="short") > mean(None, None, "long", default="short")
    rng = random.Random(1)
    chosen = Counter(
        choose(None, None, "length", LENGTHS, rng, default="long", now=T0).option
        for _ in range(3000)
    )
    assert chosen["long"] > chosen["short"] and chosen["long"] > chosen["medium"]
    assert min(chosen.values()) > 300  # a head start, not a decision


def test_team_prior_reaches_a_newcomer() -> None:
    team = State("team:T1")
    for member in ("bo", "cy", "di"):
        user = State(f"user:{member}")
        vote(team, user, "short", +1, 6)
        vote(team, user, "long", -1, 6)
    newcomer = State("user:new")
    assert mean(team, newcomer, "short") > 0.7 > 0.3 > mean(team, newcomer, "long")
    assert picks(team, newcomer)["short"] > 0.8 * 400


def test_team_prior_is_capped() -> None:
    team = State("team:T1")
    vote(team, None, "short", +1, 500)
    alpha, beta = posterior(team, State(), "length", "short", now=T0)
    assert alpha + beta == pytest.approx(2 * Params().prior + Params().team_cap)


def test_user_evidence_overrides_the_team() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, State("user:bo"), "short", +1, 40)
    vote(team, State("user:bo"), "long", -1, 40)
    assert picks(team, ada)["short"] > 300
    vote(team, ada, "long", +1, 30)
    vote(team, ada, "short", -1, 30)
    assert mean(team, ada, "long") > mean(team, ada, "short")
    chosen = picks(team, ada)
    assert chosen["long"] > 0.6 * 400 and chosen["short"] < 0.05 * 400


def test_own_votes_count_once_in_the_team_prior() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, ada, "short", +1, 5)
    alpha, beta = posterior(team, ada, "length", "short", now=T0)
    assert (alpha, beta) == pytest.approx((Params().prior + 5, Params().prior))


def test_one_vote_cannot_flip_an_established_preference() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, ada, "short", +1, 8)
    vote(team, ada, "short", -1, 2)
    vote(team, ada, "medium", -1, 4)
    vote(team, ada, "long", -1, 4)
    established = picks(team, ada)["short"]
    update(team, ada, ("length", "short"), -1, weight=50.0, now=T0)  # even a heavy one
    after = explain(ada, team, now=T0)["length"]
    assert after.option == "short"
    assert picks(team, ada)["short"] > 0.8 * established


def test_a_step_is_bounded_and_a_bystander_counts_less() -> None:
    heavy, capped, bystander = State(), State(), State()
    update(None, heavy, ("length", "short"), +1, weight=50.0, now=T0)
    update(None, capped, ("length", "short"), +1, weight=Params().max_step, now=T0)
    update(None, bystander, ("length", "short"), +1, weight=0.3, now=T0)
    assert heavy == capped
    assert mean(None, bystander, "short") < mean(None, capped, "short")


def test_decay_halves_evidence_after_one_half_life() -> None:
    params = Params(half_life_s=7 * DAY)
    user = State()
    update(None, user, ("length", "short"), +1, weight=1.0, now=T0, params=params)
    counts = user.counts("length", "short")
    assert counts is not None
    assert counts.at_time(T0 + 7 * DAY, params.half_life_s) == pytest.approx((0.5, 0.0))
    assert counts.at_time(T0 + 14 * DAY, params.half_life_s) == pytest.approx((0.25, 0.0))
    update(None, user, ("length", "short"), -1, now=T0 + 7 * DAY, params=params)
    assert (counts.up, counts.down, counts.at) == pytest.approx((0.5, 1.0, T0 + 7 * DAY))


def test_old_evidence_fades_so_the_preference_can_change() -> None:
    user = State()
    for day in range(20):
        update(None, user, ("length", "short"), +1, now=T0 + day * DAY)
    later = T0 + 400 * DAY
    for day in range(5):
        update(None, user, ("length", "long"), +1, now=later + day * DAY)
    assert explain(user, now=later + 5 * DAY)["length"].option == "long"


def test_retraction_undoes_a_vote() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, ada, "short", +1, 3)
    vote(team, ada, "long", -1, 2)
    before = copy.deepcopy((team, ada))
    reply = [("length", "medium"), ("structure", "bullets"), ("emoji", "on")]
    update(team, ada, reply, -1, weight=0.5, now=T0)
    retract(team, ada, reply, -1, weight=0.5, voted_at=T0)
    assert _rounded(team) == _rounded(before[0])
    assert _rounded(ada) == _rounded(before[1])


def test_a_late_retraction_undoes_the_vote_up_to_decay() -> None:
    with_vote, without = State(), State()
    for state in (with_vote, without):
        update(None, state, ("length", "short"), +1, now=T0)
    update(None, with_vote, ("length", "short"), -1, now=T0 + DAY)
    for state in (with_vote, without):  # more votes come in before the retraction
        update(None, state, ("length", "short"), +1, now=T0 + 20 * DAY)
    retract(None, with_vote, ("length", "short"), -1, voted_at=T0 + DAY)
    later = T0 + 30 * DAY
    assert posterior(None, with_vote, "length", "short", now=later) == pytest.approx(
        posterior(None, without, "length", "short", now=later)
    )
    assert _rounded(with_vote) == _rounded(without)


def test_votes_and_retractions_commute() -> None:
    a, b = State(), State()
    update(None, a, ("length", "short"), +1, now=T0 + 10 * DAY)
    update(None, a, ("length", "short"), +1, now=T0)  # arrives late
    update(None, b, ("length", "short"), +1, now=T0)
    update(None, b, ("length", "short"), +1, now=T0 + 10 * DAY)
    assert _rounded(a) == _rounded(b)


def test_reset_forgets_one_decision_or_everything() -> None:
    ada = State("user:ada")
    update(None, ada, [("length", "short"), ("emoji", "on")], +1, now=T0)
    reset(ada, "length")
    assert set(ada.decisions) == {"emoji"}
    reset(ada, "formality")  # nothing learned there: nothing to do
    reset(ada)
    assert ada.decisions == {}
    assert mean(None, ada, "short") == pytest.approx(0.5)


def test_prune_drops_evidence_that_faded_away() -> None:
    ada = State()
    update(None, ada, ("length", "short"), +1, now=T0)
    update(None, ada, ("emoji", "on"), +1, now=T0 + 3000 * DAY)
    assert prune(ada, now=T0 + 3000 * DAY) == 1
    assert set(ada.decisions) == {"emoji"}


def test_state_and_choice_survive_a_json_round_trip() -> None:
    team, ada = State("team:T1"), State("user:ada")
    rng = random.Random(3)
    choices = choose_style(team, ada, Style(), rng, now=T0)
    update(team, ada, choices, +1, now=T0)
    update(team, ada, ("personality:data", "data_analyst"), -1, weight=0.5, now=T0 + 60)
    for state in (team, ada):
        assert State.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    for choice in choices:
        assert Choice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
    with pytest.raises(ValueError, match="format"):
        State.from_dict({"format": 99, "decisions": {}})


def test_explain_reports_preference_and_confidence() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, ada, "short", +1, 2)
    few = explain(ada, team, now=T0)["length"]
    vote(team, ada, "short", +1, 18)
    vote(team, ada, "long", -1, 10)
    many = explain(ada, team, now=T0)["length"]
    assert many.option == "short"
    assert many.low < many.mean < many.high
    assert many.high - many.low < few.high - few.low
    assert many.votes == pytest.approx(30)
    assert [o.option for o in many.options] == ["short", "long"]
    assert json.loads(json.dumps(many.to_dict()))["option"] == "short"
    assert explain(State(), now=T0) == {}
    assert set(explain(State(), team, now=T0)) == {"length"}  # a newcomer sees the team's


def test_beta_interval_matches_known_values() -> None:
    assert beta_interval(1, 1, 0.9) == pytest.approx((0.05, 0.95))
    low, high = beta_interval(2, 1, 0.5)  # cdf x**2
    assert (low, high) == pytest.approx((0.25**0.5, 0.75**0.5))
    stats = pytest.importorskip("scipy.stats")
    for a, b in [(0.5, 0.5), (3.5, 12.0), (120.0, 40.0), (1.0, 300.0)]:
        low, high = beta_interval(a, b, 0.9)
        assert low == pytest.approx(stats.beta.ppf(0.05, a, b), abs=1e-9)
        assert high == pytest.approx(stats.beta.ppf(0.95, a, b), abs=1e-9)


def test_choices_are_deterministic_given_the_seed() -> None:
    team, ada = State("team:T1"), State("user:ada")
    vote(team, ada, "medium", +1, 3)

    def run(seed: int) -> list[str]:
        rng = random.Random(seed)
        out = []
        for i in range(30):
            choice = choose(team, ada, "length", LENGTHS, rng, now=T0 + i)
            out.append(choice.option)
        return out

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_a_choice_records_draws_means_and_whether_it_explored() -> None:
    ada = State()
    vote(None, ada, "short", +1, 30)
    rng = random.Random(5)
    choices = [choose(None, ada, "length", LENGTHS, rng, now=T0) for _ in range(300)]
    for choice in choices:
        assert set(choice.draws) == set(choice.means) == set(LENGTHS)
        assert choice.draws[choice.option] == max(choice.draws.values())
        assert choice.explored == (choice.option != "short")
    assert 0 < sum(c.explored for c in choices) < 60


def test_exploration_below_one_explores_less() -> None:
    ada = State()
    vote(None, ada, "short", +1, 3)
    vote(None, ada, "short", -1, 1)

    def explored(params: Params) -> int:
        rng = random.Random(9)
        return sum(
            choose(None, ada, "length", LENGTHS, rng, now=T0, params=params).explored
            for _ in range(500)
        )

    assert explored(Params(exploration=0.25)) < explored(Params(exploration=1.0))


def test_style_helpers() -> None:
    base = Style(length="long", formality="casual", structure="prose", emoji=True)
    assert style_defaults(base) == {
        "length": "long",
        "formality": "casual",
        "structure": "prose",
        "emoji": "on",
    }
    rng = random.Random(2)
    choices = choose_style(State(), State(), base, rng, now=T0)
    assert [c.decision for c in choices] == list(STYLE_OPTIONS)
    assert all(c.default == style_defaults(base)[c.decision] for c in choices)
    short = Choice("length", "short", {"short": 1.0}, {"short": 0.5})
    plain = Choice("emoji", "off", {"off": 1.0}, {"off": 0.5})
    who = Choice(personality_decision("data"), "data_analyst", {}, {})
    assert apply_style(base, [short, plain, who]) == Style(
        length="short", formality="casual", structure="prose", emoji=False
    )
    with pytest.raises(ValueError, match="not an option"):
        apply_style(base, [Choice("length", "huge", {}, {})])


def test_personality_decisions_learn_per_request_kind() -> None:
    team, ada = State("team:T1"), State("user:ada")
    names = ("data_analyst", "assistant", "marketing_maestro")
    data, general = personality_decision("data"), personality_decision("general")
    for _ in range(15):
        update(team, ada, (data, "data_analyst"), +1, now=T0)
        update(team, ada, (general, "data_analyst"), -1, now=T0)
    rng = random.Random(4)
    got = Counter(choose(team, ada, data, names, rng, now=T0).option for _ in range(200))
    assert got["data_analyst"] > 180
    other = Counter(
        choose(team, ada, general, names, rng, default="assistant", now=T0).option
        for _ in range(200)
    )
    assert other["data_analyst"] < 10


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="reward"):
        update(None, State(), ("length", "short"), 0, now=T0)
    with pytest.raises(ValueError, match="no options"):
        choose(None, None, "length", [], random.Random(1), now=T0)
    with pytest.raises(ValueError, match="default"):
        choose(None, None, "length", LENGTHS, random.Random(1), default="huge", now=T0)
    with pytest.raises(ValueError):
        Params(half_life_s=0)
    with pytest.raises(ValueError):
        Params(team_cap=-1)
    with pytest.raises(ValueError):
        Params(credible=1.0)


def test_a_zero_weight_changes_nothing_and_no_scope_is_fine() -> None:
    ada = State()
    update(None, ada, ("length", "short"), +1, weight=0.0, now=T0)
    assert ada.decisions == {}
    update(None, None, ("length", "short"), +1, now=T0)  # nowhere to learn: no error


def _rounded(state: State) -> dict[str, object]:
    data = state.to_dict()
    for options in data["decisions"].values():
        for counts in options.values():
            counts["up"] = round(counts["up"], 9)
            counts["down"] = round(counts["down"], 9)
    return data
