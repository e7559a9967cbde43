"""This process's name among the workers of one deployment.

Several ``chorus run`` processes share a database and Redis; the event journal records which
worker holds an event, and the scheduler's leader lock which worker leads. Both name the
process the same way, so an operator can match a journal row, the lock and a log line.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["process_name"]


def process_name() -> str:
    """``host:pid:random``: the random part tells apart a reused pid, and two holders in one
    process (each journal or leadership asks once and keeps its name)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:200]
