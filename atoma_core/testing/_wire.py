"""How the sandbox puts an answer on the wire: whole, trickled, or as an event stream (framed
with the sandbox's line ending, keep-alive comments, BOM and `[DONE]` settings), and the faults
that strike while it is being written (a reset, a stall, a bad chunk, an error event)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._faults import SEALING_FAULTS
from ._routes import padded_chunk

if TYPE_CHECKING:
    from ._faults import Fault
    from ._server import Sandbox

__all__ = ["complete", "reset_connection", "stream"]


def reset_connection(request: web.Request) -> None:
    """Abort with SO_LINGER 0, so the peer sees a TCP reset rather than a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def complete(
    request: web.Request, answer: dict[str, Any], rid: str, fault: Fault | None
) -> web.StreamResponse:
    """A whole JSON answer, or one a fault pads, truncates, resets, stalls or trickles."""
    kind = fault.kind if fault is not None else None
    if kind == "oversized_event" and fault is not None:
        answer["padding"] = "x" * fault.size
    data = json.dumps(answer).encode()
    if kind == "truncated_json":
        data = data[: len(data) // 2]
    if kind in ("reset", "stall", "trickle"):
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(data)
        await resp.prepare(request)
        if kind == "reset":
            await resp.write(data[: len(data) // 2])
            reset_connection(request)
        elif kind == "stall":
            await asyncio.sleep(3600)
        else:
            assert fault is not None
            await trickle(resp, data, fault)
        return resp
    request_id = str(answer.get("id", rid))  # the proxy's x-request-id is the completion id
    return web.Response(body=data, content_type="application/json", headers={"x-request-id": request_id})


async def trickle(resp: web.StreamResponse, data: bytes, fault: Fault) -> None:
    """The first `fault.size` bytes one at a time, `fault.seconds` apart, then the rest."""
    for i in range(min(fault.size, len(data))):
        await resp.write(data[i : i + 1])
        await asyncio.sleep(fault.seconds)
    await resp.write(data[fault.size :])


async def pause(sb: Sandbox, resp: web.StreamResponse, seconds: float) -> None:
    """Wait, sending a keep-alive comment every interval of silence, like the proxy."""
    interval = sb.keepalive_interval
    while seconds > 0:
        step = min(interval, seconds)
        await asyncio.sleep(step)
        seconds -= step
        if step >= interval:
            await resp.write(b": keep-alive" + sb.line_ending * 2)


def sse_frame(sb: Sandbox, payload: bytes, event: bytes | None = None) -> bytes:
    end = sb.line_ending
    head = b"event: " + event + end if event else b""
    return head + b"data: " + payload + end + end


async def stream(
    sb: Sandbox, request: web.Request, chunks: list[dict[str, Any]], rid: str, fault: Fault | None
) -> web.StreamResponse:
    """An event stream of `chunks`, framed with the sandbox's settings, cut or spoilt by `fault`."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "x-request-id": str(chunks[0].get("id", rid)) if chunks else rid,
        }
    )
    await resp.prepare(request)
    kind = fault.kind if fault is not None else None
    if kind == "oversized_event" and fault is not None:
        chunks.insert(1, padded_chunk(chunks[0], fault.size))
    frames = [sse_frame(sb, json.dumps(c, separators=(",", ":")).encode()) for c in chunks]
    if sb.send_done or kind == "done_then_linger":
        frames.append(sse_frame(sb, b"[DONE]"))
    if sb.bom:
        frames[0] = b"\xef\xbb\xbf" + frames[0]
    if kind == "trickle" and fault is not None:
        await trickle(resp, b"".join(frames), fault)
        return resp
    if kind == "delay" and fault is not None:
        await pause(sb, resp, fault.seconds)
    cut = -1
    if fault is not None and fault.after_chunks is not None and fault.kind not in SEALING_FAULTS:
        cut = fault.after_chunks  # (sealing faults spoil or replay a sealed event instead: _sealed.py)
    for i, frame in enumerate(frames):
        if i == cut and fault is not None:
            await _stream_fault(sb, request, resp, fault)
            return resp
        if i and sb.chunk_delay:
            await pause(sb, resp, sb.chunk_delay)
        await resp.write(frame)
    if kind == "done_then_linger" and fault is not None:
        await asyncio.sleep(fault.seconds)
    return resp


async def _stream_fault(sb: Sandbox, request: web.Request, resp: web.StreamResponse, fault: Fault) -> None:
    """A fault that strikes after `after_chunks` chunks of a stream."""
    if fault.kind == "reset":
        reset_connection(request)
    elif fault.kind == "stall":
        await asyncio.sleep(3600)
    elif fault.kind == "keepalive_forever":
        while True:
            await pause(sb, resp, 3600)
    elif fault.kind == "malformed_chunk":
        await resp.write(sse_frame(sb, (fault.body or "").encode()))
    elif fault.kind == "error_event":
        code = fault.headers.get("code", "INTERNAL_ERROR")
        error = json.dumps({"error": {"code": code, "message": fault.body}}).encode()
        await resp.write(sse_frame(sb, error, b"error" if fault.content_type == "event" else None))
    # "truncate": nothing more; the body ends cleanly without a finish_reason
