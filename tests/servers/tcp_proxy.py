"""A TCP proxy on 127.0.0.1 that can make a server stop answering, for fault tests.

``freeze()`` keeps every connection open but passes nothing on in either direction (what a
hung server or a black-holed network looks like to a client that already sent its request);
``refuse()`` closes the connections and refuses new ones (a server that is down); ``heal()``
lets traffic through again (connections frozen meanwhile are closed: their streams are cut).
It runs its own event loop in a thread, so blocking clients in any thread can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["TCPProxy", "proxy_to"]


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.StreamWriter] = set()

    def start(self) -> TCPProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer, writer), self._pipe(up_reader, writer, up_writer)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "freeze" or writer in self._frozen:
                    self._frozen |= {writer, peer}
                    continue  # swallowed: the other side waits for ever
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, peer):
                self._writers.discard(w)
                self._frozen.discard(w)
                with contextlib.suppress(Exception):
                    w.close()

    def _call(self, fn: object) -> None:
        async def run() -> None:
            fn()  # type: ignore[operator]

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def freeze(self) -> None:
        self._call(lambda: setattr(self, "mode", "freeze"))

    def refuse(self) -> None:
        def go() -> None:
            self.mode = "refuse"
            for w in list(self._writers):
                w.close()

        self._call(go)

    def heal(self) -> None:
        def go() -> None:
            self.mode = "pass"
            for w in list(self._frozen):
                w.close()

        self._call(go)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[TCPProxy]:
    proxy = TCPProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
