"""The framework adapters next to the frameworks' own OpenAI clients, on the same bench server in
ONE warm process, taking turns every round: client CPU per call (one agent turn, not streamed)
and per streamed chunk.

    python -m benchmarks.frameworks [--calls 200] [--streams 10] [--rounds 5]

    langchain   ChatAtoma (this SDK)            vs  langchain-openai ChatOpenAI
    pydantic-ai Agent(AtomaModel) (this SDK)    vs  Agent(OpenAIChatModel) (openai-python)

plus this SDK's own functions as the floor under both. Needs the bench extra (`make bench`
installs it): langchain-openai and pydantic-ai-slim[openai]. Figures are medians over rounds of
`time.process_time()` per unit; the server runs in its own process on the other CPU.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any, Awaitable, Callable

from .payloads import expect
from .server_process import run_against

CALL_MODEL = "bench:small"
STREAM_MODEL = "bench:stream:202:1:0"  # 199 content chunks (+ role, finish, usage)
TOKEN = "bench-token"

Unit = Callable[[], Awaitable[int]]  # one call or stream; returns the chunks it read (1 for a call)


def _clients(url: str) -> dict[str, tuple[Unit, Unit, Callable[[], Awaitable[None]]]]:
    """name -> (one call, one stream, close)."""
    from langchain_openai import ChatOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from atoma_core import AtomaCore
    from atoma_funcs import chat_create, chat_create_stream
    from atoma_funcs.integrations.langchain import ChatAtoma
    from atoma_funcs.integrations.pydantic_ai import AtomaModel

    core = AtomaCore(TOKEN, url)
    out: dict[str, tuple[Unit, Unit, Callable[[], Awaitable[None]]]] = {}

    async def sdk_call() -> int:
        request = {"model": CALL_MODEL, "messages": [{"role": "user", "content": "Hello"}]}
        (await chat_create(core, request)).unwrap()
        return 1

    async def sdk_stream() -> int:
        request = {"model": STREAM_MODEL, "messages": [{"role": "user", "content": "Hello"}]}
        chunks = 0
        async with (await chat_create_stream(core, request)).unwrap() as stream:
            async for _ in stream:
                chunks += 1
        return chunks

    out["sdk functions (floor)"] = (sdk_call, sdk_stream, core.close)

    def langchain(name: str, call_llm: Any, stream_llm: Any, close: Callable[[], Awaitable[None]]) -> None:
        async def call() -> int:
            await call_llm.ainvoke("Hello")
            return 1

        async def stream() -> int:
            return sum([1 async for _ in stream_llm.astream("Hello")])

        out[name] = (call, stream, close)

    async def nothing() -> None:
        return None

    langchain(
        "langchain ChatAtoma",
        ChatAtoma(model=CALL_MODEL, core=core),
        ChatAtoma(model=STREAM_MODEL, core=core),
        nothing,
    )
    oa_call = ChatOpenAI(model=CALL_MODEL, base_url=url + "/v1", api_key=TOKEN, stream_usage=True)
    oa_stream = ChatOpenAI(model=STREAM_MODEL, base_url=url + "/v1", api_key=TOKEN, stream_usage=True)

    async def close_openai() -> None:
        for llm in (oa_call, oa_stream):
            await llm.root_async_client.close()

    langchain("langchain ChatOpenAI", oa_call, oa_stream, close_openai)

    def pydantic_ai(
        name: str, call_model: Any, stream_model: Any, close: Callable[[], Awaitable[None]]
    ) -> None:
        call_agent, stream_agent = Agent(call_model), Agent(stream_model)

        async def call() -> int:
            await call_agent.run("Hello")
            return 1

        async def stream() -> int:
            async with stream_agent.run_stream("Hello") as result:
                return sum([1 async for _ in result.stream_text(delta=True, debounce_by=None)])

        out[name] = (call, stream, close)

    pydantic_ai(
        "pydantic-ai AtomaModel", AtomaModel(CALL_MODEL, core), AtomaModel(STREAM_MODEL, core), nothing
    )
    provider = OpenAIProvider(base_url=url + "/v1", api_key=TOKEN)
    pydantic_ai(
        "pydantic-ai OpenAIChatModel",
        OpenAIChatModel(CALL_MODEL, provider=provider),
        OpenAIChatModel(STREAM_MODEL, provider=provider),
        provider.client.close,
    )
    return out


async def _cpu_per_unit(unit: Unit, count: int, per_chunk: bool) -> float:
    gc.collect()
    units = 0
    started = time.process_time()
    for _ in range(count):
        chunks = await unit()
        units += STREAM_CHUNKS if per_chunk else 1
        assert chunks > 0
    return (time.process_time() - started) / units * 1e6


STREAM_CHUNKS = expect(STREAM_MODEL).chunks


async def _measure(url: str, calls: int, streams: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    clients = _clients(url)
    figures: dict[str, dict[str, list[float]]] = {name: {"call": [], "chunk": []} for name in clients}
    try:
        for call, stream, _ in clients.values():  # warm-up: imports, connections, caches
            for _ in range(3):
                await call()
                await stream()
        for _ in range(rounds):
            for name, (call, stream, _) in clients.items():
                figures[name]["call"].append(await _cpu_per_unit(call, calls, False))
                figures[name]["chunk"].append(await _cpu_per_unit(stream, streams, True))
    finally:
        for _, _, close in clients.values():
            await close()
    return figures


def _report(figures: dict[str, dict[str, list[float]]]) -> None:
    med = {name: {k: statistics.median(v) for k, v in f.items()} for name, f in figures.items()}
    print(f"{'client':30} {'CPU/call us':>12} {'CPU/chunk us':>13}")
    for name, m in med.items():
        print(f"{name:30} {m['call']:12.0f} {m['chunk']:13.1f}")
    pairs = [
        ("langchain ChatOpenAI", "langchain ChatAtoma"),
        ("pydantic-ai OpenAIChatModel", "pydantic-ai AtomaModel"),
    ]
    for theirs, ours in pairs:
        print(
            f"{theirs} / {ours}: x{med[theirs]['call'] / med[ours]['call']:.2f} per call, "
            f"x{med[theirs]['chunk'] / med[ours]['chunk']:.2f} per chunk"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frameworks", description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="calls per client per round")
    parser.add_argument(
        "--streams", type=int, default=10, help=f"streams of {STREAM_CHUNKS} chunks per round"
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures = run_against(CALL_MODEL, lambda url: _measure(url, args.calls, args.streams, args.rounds))
    _report(figures)


if __name__ == "__main__":
    main()
