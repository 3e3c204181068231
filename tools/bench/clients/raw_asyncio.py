"""The physical floor: the raw loop on bare asyncio streams, HTTP/1.1 written and read by hand
(keep-alive, Content-Length and chunked bodies; nothing else, no TLS). What Python itself costs
here, below any HTTP library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from .raw import PATH, RawLoop

BUILD_TOOLS = None
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Client(RawLoop):
    name = "raw asyncio loop"

    async def open(self, base_url: str, connections: int) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.head = (
            f"POST {url.path.rstrip('/')}{PATH} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(connections)

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()

    async def _send(self, body: dict[str, Any]) -> tuple[Connection, int | None]:
        """Write the request on a pooled connection: (the connection, the response body's
        length, or None for a chunked body)."""
        connection = (
            self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        )
        data = json.dumps(body).encode()
        connection[1].write(self.head + b"%d\r\n\r\n" % len(data) + data)
        head = await connection[0].readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                return connection, int(line[15:])
        return connection, None

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.slots:
            connection, length = await self._send(body)
            reader = connection[0]
            if length is None:
                payload = b"".join([piece async for piece in _chunks(reader)])
            else:
                payload = await reader.readexactly(length)
            self.idle.append(connection)
        return json.loads(payload)

    async def lines(self, body: dict[str, Any]) -> AsyncIterator[str]:
        async with self.slots:
            connection, _ = await self._send(body)
            rest = b""
            async for piece in _chunks(connection[0]):
                *complete, rest = (rest + piece).split(b"\n")
                for line in complete:
                    yield line.decode()
            self.idle.append(connection)


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            await reader.readline()
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)
