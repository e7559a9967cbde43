"""The generated conversations of bench.conversations are what issue 21 asks for, and stay
the same for a seed (the figures measured on them are comparable over time)."""

from __future__ import annotations

from collections import Counter

from bench.conversations_data import generate


def test_the_data_set_has_the_shape_the_bench_promises() -> None:
    conversations = generate()
    assert len(conversations) >= 20
    kinds: Counter[str] = Counter()
    for conv in conversations:
        assert len(conv.turns) >= 300
        assert 2 <= len(set(t.speaker for t in conv.turns)) <= 3
        sessions = {t.session: t.at.date() for t in conv.turns}
        assert len(sessions) >= 10
        assert (max(sessions.values()) - min(sessions.values())).days >= 60  # months
        assert any(t.text.startswith("[shares a photo") for t in conv.turns)
        assert sum(len(t.text) < 30 for t in conv.turns) > len(conv.turns) // 5  # filler
        for q in conv.questions:
            kinds[q.kind] += 1
            assert q.evidence and all(0 <= i < len(conv.turns) for i in q.evidence)
            if q.kind == "multi-hop":
                assert len({conv.turns[i].session for i in q.evidence}) >= 2
            for i in q.evidence:  # paraphrase: the question never copies its evidence
                assert conv.turns[i].text not in q.text
    assert sum(kinds.values()) >= 1000
    assert set(kinds) == {"single-hop", "multi-hop", "temporal", "open-domain"}


def test_the_same_seed_gives_the_same_data() -> None:
    a, b = generate(2), generate(2)
    assert [t.text for t in a[1].turns] == [t.text for t in b[1].turns]
    assert [q.text for q in a[1].questions] == [q.text for q in b[1].questions]
    assert [t.text for t in generate(2, seed=1)[0].turns] != [t.text for t in a[0].turns]
