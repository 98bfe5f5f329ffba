"""The floor: one shared aiohttp ClientSession, msgspec decoding into small Structs, and a minimal
SSE split on b"\\n\\n". No retries, deadlines, validation beyond the Structs, or error mapping."""

from __future__ import annotations

from typing import Awaitable, Callable

import aiohttp
import msgspec

from . import MESSAGES, TOKEN, no_hold


class Usage(msgspec.Struct):
    completion_tokens: int = 0


class Message(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message


class Completion(msgspec.Struct):
    choices: list[Choice]
    usage: Usage | None = None


class Delta(msgspec.Struct):
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    delta: Delta


class Chunk(msgspec.Struct):
    choices: list[ChunkChoice]
    usage: Usage | None = None


_encode = msgspec.json.Encoder().encode
_USAGE = {"include_usage": True}
_completion = msgspec.json.Decoder(Completion).decode
_chunk = msgspec.json.Decoder(Chunk).decode


class BareClient:
    def __init__(self, url: str, connections: int) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))
        self.url = url + "/v1/chat/completions"
        self.headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}

    async def complete(self, model: str) -> tuple[int, int]:
        body = _encode({"model": model, "messages": MESSAGES})
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            response.raise_for_status()
            completion = _completion(await response.read())
        content = completion.choices[0].message.content
        return len(content or ""), completion.usage.completion_tokens if completion.usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        body = _encode({"model": model, "messages": MESSAGES, "stream": True, "stream_options": _USAGE})
        chunks = chars = tokens = 0
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            response.raise_for_status()
            buffer = b""
            async for data in response.content.iter_any():
                *events, buffer = (buffer + data).split(b"\n\n")
                # Drop the read and each event once handled, so a stream held mid-read (the open
                # workloads) keeps only what it has not handled yet, as any client should.
                del data
                events.reverse()
                while events:
                    event = events.pop()
                    if not event.startswith(b"data: "):
                        continue  # a keep-alive comment
                    chunk = _chunk(event[6:])
                    chunks += 1
                    if chunk.choices:
                        content = chunk.choices[0].delta.content
                        if content:
                            chars += len(content)
                    elif chunk.usage is not None:
                        tokens = chunk.usage.completion_tokens
                    if chunks == hold_at:
                        await hold()
        return chunks, chars, tokens

    async def aclose(self) -> None:
        await self.session.close()


async def connect(url: str, variant: str, connections: int) -> BareClient:
    return BareClient(url, connections)
