"""Answers shown while the model writes them, through the real dispatcher.

A streaming model double hands out its answer word by word, and pauses before the last word
until the test lets it go on, so a test can see that the reply was on screen before the
answer was done. The transport double implements ``StreamsReplies``. Also: answers cut at the
token limit say so, and "go on" continues them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bot import messages, prompts
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.events import DeliveryError, Outgoing
from bot.llm.base import Completion, FinishReason
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with, interactions


class Stream:
    def __init__(self, owner: WordByWord, text: str, finish: FinishReason, fail: bool) -> None:
        self.owner, self.text, self.finish, self.fail = owner, text, finish, fail
        self._completion: Completion | None = None

    async def _pieces(self) -> AsyncIterator[str]:
        words = self.text.split(" ")
        for i, word in enumerate(words):
            if i == len(words) - 1:
                await self.owner.last_word.wait()
                if self.fail:
                    raise ProviderError("fake", "the connection dropped mid-answer")
            yield word if i == 0 else f" {word}"
        self._completion = Completion(self.text, "fake", "fake-1", 7, 3, finish_reason=self.finish)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces()

    @property
    def completion(self) -> Completion:
        assert self._completion is not None
        return self._completion

    async def aclose(self) -> None:
        return None


class WordByWord(FakeLLM):
    """A FakeLLM that can stream: its queued answer, a word at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.last_word = asyncio.Event()
        self.finish: FinishReason = "stop"
        self.fail = False

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Stream:
        self.history.append(list(messages))
        text = self.queue.popleft() if self.queue else f"echo: {messages[-1].content}"
        assert isinstance(text, str)
        return Stream(self, text, self.finish, self.fail)


class Screen(FakeTransport):
    """A transport that shows replies as they are written (StreamsReplies)."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.pieces: list[str] = []
        self.finished: list[Outgoing] = []

    async def open_stream(self, out: Outgoing) -> Screen.Live:
        if self.refuse:
            raise DeliveryError("streaming is not allowed here")
        self.pieces.append(out.text)
        return Screen.Live(self)

    class Live:
        def __init__(self, screen: Screen) -> None:
            self.screen = screen

        async def append(self, text: str) -> None:
            self.screen.pieces.append(text)

        async def finish(self, out: Outgoing) -> list[str]:
            self.screen.finished.append(out)
            return await self.screen.send(out)


async def _until_shown(screen: Screen, count: int) -> None:
    async with asyncio.timeout(10):
        while len(screen.pieces) < count:
            await asyncio.sleep(0.01)


async def test_an_answer_is_on_screen_before_it_is_finished(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen()
    llm.enqueue("Refunds take five working days.")
    async with app_with(make_settings(tmp_path), llm) as app:
        task = asyncio.create_task(app.dispatcher.handle_message(message("refunds?"), screen))
        await _until_shown(screen, 4)
        assert "".join(screen.pieces) == "Refunds take five working"  # shown, not done
        assert not task.done() and interactions(app) == []
        llm.last_word.set()
        await asyncio.wait_for(task, 10)
        [row] = interactions(app)
    assert "".join(screen.pieces) == "Refunds take five working days."
    [final] = screen.finished
    assert final.text == "Refunds take five working days." and final.kind == "answer"
    assert row.reply_text == final.text  # recorded once, the final text


async def test_the_reply_opens_with_the_first_words_not_blank_pieces(tmp_path: Path) -> None:
    """What follows the opening is paced to the platform's limits: opened on a blank piece,
    the first words would wait for the next update."""
    llm, screen = WordByWord(), Screen()
    llm.enqueue("\n Refunds take five working days.")  # pieces: "\n", " Refunds", " take", …
    async with app_with(make_settings(tmp_path), llm) as app:
        task = asyncio.create_task(app.dispatcher.handle_message(message("refunds?"), screen))
        await _until_shown(screen, 1)
        assert screen.pieces[0] == "\n Refunds"
        llm.last_word.set()
        await asyncio.wait_for(task, 10)
    assert "".join(screen.pieces) == "\n Refunds take five working days."
    assert screen.finished[0].text == "Refunds take five working days."


async def test_an_answer_of_blank_pieces_only_is_never_opened(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen()
    llm.enqueue("\n \n")
    llm.last_word.set()
    async with app_with(make_settings(tmp_path), llm) as app:
        await asyncio.wait_for(app.dispatcher.handle_message(message("hi"), screen), 10)
    assert screen.pieces == [] and screen.texts == [messages.EMPTY_ANSWER]


async def test_a_failure_mid_stream_ends_in_the_apology(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen()
    llm.enqueue("This answer will break off")
    llm.fail = True
    llm.last_word.set()
    async with app_with(make_settings(tmp_path), llm) as app:
        await asyncio.wait_for(app.dispatcher.handle_message(message("hi"), screen), 10)
        [row] = interactions(app)
    [final] = screen.finished
    assert final.text == messages.GENERATION_FAILED and final.kind == "error"
    assert row.outcome == "failed"


async def test_a_stream_that_cannot_start_is_delivered_whole(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen(refuse=True)
    llm.enqueue("All in one piece.")
    llm.last_word.set()
    async with app_with(make_settings(tmp_path), llm) as app:
        await asyncio.wait_for(app.dispatcher.handle_message(message("hi"), screen), 10)
    assert screen.pieces == [] and screen.texts == ["All in one piece."]


async def test_a_cut_answer_says_so_and_go_on_continues_it(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen()
    llm.last_word.set()
    llm.enqueue("Step one: open the settings. Step two:")
    llm.finish = "length"
    async with app_with(make_settings(tmp_path), llm) as app:
        await app.dispatcher.handle_message(message("how do I set up SSO?", thread="t1"), screen)
        assert screen.texts[-1].endswith(messages.ANSWER_CUT)
        llm.enqueue("choose SAML and paste the metadata URL.")
        llm.finish = "stop"
        await app.dispatcher.handle_message(message("go on", thread="t1"), screen)
        asked = llm.history[-1]
        assert asked[-1].content == prompts.CONTINUE_CUT
        assert any("Step two:" in m.content for m in asked[:-1])  # it sees what it wrote
        assert screen.texts[-1] == "choose SAML and paste the metadata URL."
        rows = interactions(app)
        # Finished: "go on" is an ordinary message again.
        await app.dispatcher.handle_message(message("go on", thread="t1"), screen)
        assert llm.history[-1][-1].content == "go on"
    assert [r.request_text for r in rows] == ["how do I set up SSO?", "go on"]
    assert [r.route_reason for r in rows][-1] == "continue"


async def test_go_on_elsewhere_is_just_a_message(tmp_path: Path) -> None:
    llm, screen = WordByWord(), Screen()
    llm.last_word.set()
    llm.enqueue("Cut here:")
    llm.finish = "length"
    async with app_with(make_settings(tmp_path), llm) as app:
        await app.dispatcher.handle_message(message("long question", thread="t1"), screen)
        llm.finish = "stop"
        await app.dispatcher.handle_message(message("go on", thread="other"), screen)
    assert llm.history[-1][-1].content == "go on"


async def test_a_transport_that_cannot_stream_gets_the_whole_answer(tmp_path: Path) -> None:
    llm, transport = WordByWord(), FakeTransport()
    llm.enqueue("Whole.")
    llm.last_word.set()
    async with app_with(make_settings(tmp_path), llm) as app:
        await app.dispatcher.handle_message(message("hi"), transport)
    assert transport.texts == ["Whole."]
