"""Following the fake Slack's Web API calls as they arrive (bench.scale, bench.streaming)."""

from __future__ import annotations

from tests.servers import slack_fake as sf

__all__ = ["CallWatcher"]


class CallWatcher:
    """Hands every successful Web API call the fake takes from now on to :meth:`saw`, as
    it arrives (the fake's notify hook), until :meth:`detach`."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        self.fake = fake
        self.seen = len(fake.calls)
        self._original = fake._notify

        def notify() -> None:
            self._scan()
            self._original()

        fake._notify = notify  # type: ignore[method-assign]

    def detach(self) -> None:
        self.fake._notify = self._original  # type: ignore[method-assign]

    def _scan(self) -> None:
        calls = self.fake.calls
        for call in calls[self.seen :]:
            if call.ok:
                self.saw(call)
        self.seen = len(calls)

    def saw(self, call: sf.ApiCall) -> None:
        """One successful call (a subclass says what it means)."""
        raise NotImplementedError
