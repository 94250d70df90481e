"""Reference SMTP peers built on aiosmtpd: a trivial sink, and a learner's own server.

aiosmtpd is not mailsim's engine (its parser answers malformed input in its
own words); it is the reference peer in benchmarks and tests, and the library
a learner uses to write a small SMTP server of their own.

Run the sink: ``python -m mailsim.peers 127.0.0.1:2531``.
"""
from __future__ import annotations

import asyncio
import sys

__all__ = ["SinkHandler", "run_sink", "start_sink"]


class SinkHandler:
    """Accept every message and keep nothing (like ``smtp-sink``), counting them."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 OK"


async def start_sink(host: str, port: int, handler: SinkHandler | None = None):
    """Start an aiosmtpd sink on ``host:port``; returns the asyncio server."""
    from aiosmtpd.smtp import SMTP
    h = handler or SinkHandler()
    loop = asyncio.get_running_loop()
    # hostname given explicitly, so aiosmtpd does no DNS lookup
    return await loop.create_server(lambda: SMTP(h, hostname="sink.example.net"), host, port,
                                    backlog=512)


def run_sink(listen: str) -> None:
    host, _, port = listen.rpartition(":")

    async def main() -> None:
        srv = await start_sink(host or "127.0.0.1", int(port))
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":  # pragma: no cover
    run_sink(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2531")
