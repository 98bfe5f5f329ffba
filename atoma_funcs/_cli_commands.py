"""The `atoma` commands: each `async def <command>(core, args, ui) -> exit code`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._cli import EXIT_OK, EXIT_USAGE, Output, exit_code_for, exit_code_of

if TYPE_CHECKING:
    from atoma_core._events import StreamMetrics
    from atoma_core.core import AtomaCore
    from atoma_core.models.chat import ChatCompletionResponse
    from atoma_core.models.usage import Usage
    from atoma_core.types import ChatCompletionMessageParam, ChatCompletionRequestParam, EmbeddingRequestParam

    from ._batch_files import WrittenResults

__all__ = ["batch", "chat", "embed", "models"]


def _chat_request(args: argparse.Namespace) -> ChatCompletionRequestParam:
    messages: list[ChatCompletionMessageParam] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    request: ChatCompletionRequestParam = {"model": args.model, "messages": messages}
    if args.max_tokens is not None:
        request["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        request["temperature"] = args.temperature
    return request


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _usage(usage: Usage | None) -> str:
    if usage is None:
        return "usage: not reported"
    return (
        f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
        f" = {usage.total_tokens} tokens"
    )


def _stream_stats(usage: Usage | None, metrics: StreamMetrics) -> str:
    parts = [_usage(usage)]
    if metrics.time_to_first_token is not None:
        parts.append(f"time to first token {_seconds(metrics.time_to_first_token)}")
    if metrics.tokens_per_second is not None:
        parts.append(f"{metrics.tokens_per_second:.1f} tokens/s")
    parts.append(f"{_seconds(metrics.elapsed)} total")
    parts.append(f"{metrics.chunks} chunks, {metrics.attempts} attempt{'s' * (metrics.attempts != 1)}")
    return " | ".join(parts)


def _note_cut(response: ChatCompletionResponse, ui: Output) -> None:
    if response.choices and response.choices[0].finish_reason == "length":
        ui.note("atoma: note: the answer was cut at the token limit (finish_reason=length)")


async def _chat_stream(
    core: AtomaCore, request: ChatCompletionRequestParam, args: argparse.Namespace, ui: Output
) -> int:
    from atoma_core.errors import AtomaError
    from atoma_core.result import Err

    from ._chat import chat_create_stream

    started = await chat_create_stream(core, request)
    if isinstance(started, Err):
        return ui.fail(started.error)
    stream = started.value
    async with stream:
        try:
            async for chunk in stream:
                if chunk.choices and not args.json:
                    piece = chunk.choices[0].delta.content
                    if piece:
                        ui.text(piece)
        except AtomaError as error:
            return ui.fail(error)
        ui.end_line()
        collected = await stream.collect()  # already drained: builds the whole response
    if isinstance(collected, Err):  # pragma: no cover - the iteration above raised instead
        return ui.fail(collected.error)
    response = collected.value
    if args.json:
        ui.json(response)
    _note_cut(response, ui)
    ui.note(_stream_stats(stream.usage, stream.metrics))
    return EXIT_OK


async def _chat_once(
    core: AtomaCore, request: ChatCompletionRequestParam, args: argparse.Namespace, ui: Output
) -> int:
    from atoma_core.result import Err

    from ._chat import chat_create

    result = await chat_create(core, request)
    if isinstance(result, Err):
        return ui.fail(result.error)
    response = result.value
    if args.json:
        ui.json(response)
    elif response.choices:
        ui.text(response.choices[0].message.content or "")
        ui.end_line()
    _note_cut(response, ui)
    parts = [_usage(response.usage)]
    meta = response.meta
    if meta is not None:
        parts.append(f"{_seconds(meta.elapsed)} total")
        parts.append(f"{meta.attempts} attempt{'s' * (meta.attempts != 1)}")
    ui.note(" | ".join(parts))
    return EXIT_OK


async def chat(core: AtomaCore, args: argparse.Namespace, ui: Output) -> int:
    """Send one prompt; stream the answer (or not, with --no-stream)."""
    run = _chat_once if args.no_stream else _chat_stream
    return await run(core, _chat_request(args), args, ui)


async def models(core: AtomaCore, args: argparse.Namespace, ui: Output) -> int:
    """Print the id of every model the server serves."""
    from atoma_core.result import Err

    from ._models import models_list

    result = await models_list(core)
    if isinstance(result, Err):
        return ui.fail(result.error)
    if args.json:
        ui.json(result.value)
    else:
        for model in result.value.data:
            ui.text(model.id + "\n")
    return EXIT_OK


async def embed(core: AtomaCore, args: argparse.Namespace, ui: Output) -> int:
    """Print one JSON vector per text, one per line; usage on stderr."""
    import msgspec

    from atoma_core.result import Err

    from ._embeddings import embeddings_create

    request: EmbeddingRequestParam = {"model": args.model, "input": args.texts}
    if args.dimensions is not None:
        request["dimensions"] = args.dimensions
    result = await embeddings_create(core, request)
    if isinstance(result, Err):
        return ui.fail(result.error)
    response = result.value
    if args.json:
        ui.json(response)
    else:
        for item in response.data:
            ui.text(msgspec.json.encode(item.embedding).decode() + "\n")
    usage = response.usage
    ui.note(f"usage: {usage.prompt_tokens} prompt tokens" if usage is not None else "usage: not reported")
    return EXIT_OK


def _earlier_failure_codes(done: WrittenResults) -> set[int]:
    """Exit codes of the failures an earlier run left in OUT: by status, else by error class."""
    from atoma_core import errors

    codes = set()
    for status, code in done.failures:
        kind = getattr(errors, code, None) if status is None else errors.APIError
        if not (isinstance(kind, type) and issubclass(kind, errors.AtomaError)):
            kind = errors.UnexpectedClientError
        codes.add(exit_code_of(kind, status))
    return codes


def _batch_paths_problem(source: str, target: str) -> str | None:
    import os

    if not os.path.isfile(source) or not os.access(source, os.R_OK):
        return f"cannot read {source}: not a readable file"
    if os.path.exists(target):
        if os.path.samefile(source, target):
            return "OUT must not be IN"
        if not os.path.isfile(target):  # a FIFO or a device would be read for ever on resume
            return f"OUT {target} is not a regular file"
    return None


async def batch(core: AtomaCore, args: argparse.Namespace, ui: Output) -> int:
    """Run IN's batch-input lines, append a batch-output line per request to OUT, resumably.
    Exit 0 if every line (OUT's earlier ones too) succeeded, else the lowest failure's code."""
    from atoma_core.errors import InvalidRequestError

    from ._batch import batch_run
    from ._batch_files import (
        BatchOutputFile,
        InputLines,
        OutputError,
        batch_output_line,
        max_output_line,
        read_batch_output,
    )
    from ._batch_progress import Progress, Totals

    problem = _batch_paths_problem(args.input, args.output)
    if problem is not None:
        ui.note(f"atoma: error: {problem}")
        return EXIT_USAGE
    try:
        done = read_batch_output(args.output, max_output_line(core.max_body_size))
        out = BatchOutputFile(args.output)
    except InvalidRequestError as corrupt:  # a line of OUT that no run of ours wrote
        ui.note(f"atoma: error: {corrupt}")
        return EXIT_USAGE
    except OSError as exc:
        ui.note(f"atoma: error: cannot use {args.output}: {exc.strerror or exc}")
        return EXIT_USAGE
    codes = _earlier_failure_codes(done)
    totals = Totals()
    totals.skipped_failed = done.failed
    progress = Progress(ui.err, totals, args.input, len(done.ids))

    def report(number: int, why: str) -> None:
        progress.note(f"line {number}: {why}")
        progress.step()

    lines = InputLines(args.input, done.ids, report)
    finished = False
    limiter = None
    rpm, tpm = args.rpm, args.tpm
    if getattr(args, "limiter", None):
        limiter = _shared_limiter(args, ui)
        if limiter is None:
            return EXIT_USAGE
        rpm = tpm = None  # the shared limiter holds them
    try:
        results = batch_run(
            core,
            lines,
            concurrency=args.concurrency,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            limiter=limiter,
        )
        async for result in results:
            out.write(batch_output_line(result))
            totals.add(result)
            if not result.result.ok:
                codes.add(exit_code_for(result.result.error))
            progress.step()
        finished = True
    except OSError as exc:  # OUT's failures name OUT (`OutputError`); the rest are IN's
        progress.note(f"atoma: error: {exc.filename or args.input}: {exc.strerror or exc}")
        codes.add(EXIT_USAGE)
    finally:
        try:
            out.close()
        except OutputError as exc:
            progress.note(f"atoma: error: {exc.filename}: {exc.strerror or exc}")
            codes.add(EXIT_USAGE)
        progress.close()
        if limiter is not None:
            await limiter.aclose()
        totals.bad, totals.skipped = lines.bad, lines.skipped
        ui.note(totals.summary(interrupted=not finished))
    if lines.bad:
        codes.add(EXIT_USAGE)
    return min(codes, default=EXIT_OK)


def _shared_limiter(args: argparse.Namespace, ui: Output) -> Any:
    """`--limiter URL` as a limiter of `--rpm` / `--tpm`, or None after saying what is wrong."""
    from atoma_core.errors import AtomaError
    from atoma_core.limiter import limiter_from_url

    if args.rpm is None and args.tpm is None:
        ui.note("atoma: error: --limiter needs --rpm, --tpm or both (the limits to share)")
        return None
    try:
        return limiter_from_url(args.limiter, args.rpm, args.tpm, on_unavailable=args.limiter_unavailable)
    except AtomaError as exc:
        ui.note(f"atoma: error: --limiter: {exc}")
        return None
