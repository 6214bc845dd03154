"""A lean HTTP/1.1 client for the bench's callers: one keep-alive connection, one request at a time,
the protocol done by h11 (already installed with httpx) over asyncio streams. httpx's machinery costs
a few milliseconds of CPU per call, as much as the system it measures on a small machine."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import h11


class Connection:
    """POSTs JSON bodies to one URL over a connection kept open, reopened when the server closes it."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// addresses: {url}")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = [("Host", parts.netloc), ("Content-Type", "application/json")]
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.protocol = h11.Connection(h11.CLIENT)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """The answer's status and body; raises OSError (or TimeoutError) when the exchange fails."""
        stale = self.reader is None or self.reader.at_eof()  # e.g. closed by the server's keep-alive timeout
        if stale or self.protocol.our_state is not h11.IDLE:
            await self._open()
        assert self.reader is not None and self.writer is not None
        headers = [*self.headers, ("Content-Length", str(len(body)))]
        request = h11.Request(method="POST", target=self.target, headers=headers)
        sending = (request, h11.Data(data=body), h11.EndOfMessage())
        self.writer.write(b"".join(self.protocol.send(part) or b"" for part in sending))
        status, chunks = 0, []
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    event = self.protocol.next_event()
                    if event is h11.NEED_DATA:
                        self.protocol.receive_data(await self.reader.read(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        raise ConnectionResetError("the server closed the connection")
        except (h11.ProtocolError, OSError, TimeoutError):
            await self.close()
            raise
        try:
            self.protocol.start_next_cycle()
        except h11.LocalProtocolError:  # the server asked to close: the next call opens a new one
            await self.close()
        return status, b"".join(chunks)

    async def _open(self) -> None:
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.protocol = h11.Connection(h11.CLIENT)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None
