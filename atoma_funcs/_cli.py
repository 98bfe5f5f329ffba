"""The `atoma` command line: `atoma chat "prompt" [options]` (also `python -m atoma_funcs`).

Streams the answer to stdout as it arrives and prints usage and timings on stderr. Failures are one
line on stderr and an exit code chosen by the error's class (see `EPILOG`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from atoma_core._stream import StreamMetrics
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionResponse, Usage

__all__ = [
    "DEFAULT_MODEL",
    "EPILOG",
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_CONNECTION",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RESPONSE",
    "EXIT_SERVER",
    "EXIT_STREAM",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_API = 4
EXIT_SERVER = 5
EXIT_CONNECTION = 6
EXIT_STREAM = 7
EXIT_RESPONSE = 8
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EPILOG = """\
exit codes:
  0    success
  1    unexpected client error (a bug: please report it)
  2    bad usage, or a request refused before sending (InvalidRequestError)
  3    authentication or permission: 401, 403 (check ATOMASDK_BEARER_AUTH)
  4    other API errors: 400, 402 (balance), 404, 422, 423, 425, ...
  5    server busy or failing: 429 and 5xx, after retries
  6    connection failure or timeout (APIConnectionError, RequestTimeoutError)
  7    the stream broke after it started (StreamInterruptedError, StreamTruncatedError)
  8    the response did not match the API schema, or was too large
  130  interrupted (Ctrl-C)
  141  stdout closed early (broken pipe)

environment:
  ATOMASDK_BEARER_AUTH  API token (not needed with --sandbox)
  ATOMASDK_SERVER_URL   base URL (default https://api.atoma.network)

examples:
  atoma chat "Tell me about Atoma in one sentence." --sandbox
  ATOMASDK_BEARER_AUTH=... atoma chat "Hi" --max-tokens 64
  echo "Summarise this" | atoma chat - --json
"""


def exit_code_for(error: BaseException) -> int:
    """The exit code for an SDK error, by class (the table in `EPILOG`)."""
    from atoma_core import errors

    if isinstance(error, errors.StreamError):
        return EXIT_STREAM
    if isinstance(error, errors.APIError):
        if error.status_code in (401, 403):
            return EXIT_AUTH
        if error.status_code == 429 or error.status_code >= 500:
            return EXIT_SERVER
        return EXIT_API
    if isinstance(error, errors.APIConnectionError):
        return EXIT_CONNECTION
    if isinstance(error, errors.InvalidRequestError):
        return EXIT_USAGE
    if isinstance(error, errors.ResponseValidationError):
        return EXIT_RESPONSE
    return EXIT_UNEXPECTED


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `atoma` command."""
    parser = argparse.ArgumentParser(
        prog="atoma",
        description="Command line client for Atoma's chat completions API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from atoma_core import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chat = commands.add_parser(
        "chat",
        help="send one prompt and stream the answer",
        description="Send one prompt; stream the answer to stdout, usage and timings to stderr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("prompt", nargs="?", default="-", help='the user message ("-" or none: read stdin)')
    chat.add_argument("--model", "-m", default=DEFAULT_MODEL, help="model name (default: %(default)s)")
    chat.add_argument("--system", "-s", metavar="TEXT", help="a system message to send first")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="limit the answer to N tokens")
    chat.add_argument("--temperature", "-t", type=float, metavar="T", help="sampling temperature")
    where = chat.add_mutually_exclusive_group()
    where.add_argument("--server-url", metavar="URL", help="API base URL (default: $ATOMASDK_SERVER_URL)")
    where.add_argument(
        "--sandbox", action="store_true", help="start the bundled sandbox server in-process and use it"
    )
    chat.add_argument(
        "--json", action="store_true", help="print the final response as JSON on stdout (not the text)"
    )
    chat.add_argument("--no-stream", action="store_true", help="one request for the whole answer")
    chat.add_argument("--verbose", "-v", action="store_true", help='DEBUG log of the "atoma" logger')
    return parser


def _request(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    request: dict[str, Any] = {"model": args.model, "messages": messages}
    if args.max_tokens is not None:
        request["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        request["temperature"] = args.temperature
    return request


class _Output:
    """stdout for the answer (tracking whether a line is open), stderr for everything else."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.line_open = False

    def text(self, piece: str) -> None:
        if not piece:
            return
        self.line_open = True  # first: a Ctrl-C right after the write still gets the line ended
        self.out.write(piece)
        self.out.flush()
        self.line_open = not piece.endswith("\n")

    def end_line(self) -> None:
        if self.line_open:
            self.out.write("\n")
            self.out.flush()
            self.line_open = False

    def json(self, response: ChatCompletionResponse) -> None:
        import msgspec

        self.out.write(msgspec.json.format(msgspec.json.encode(response), indent=2).decode() + "\n")
        self.out.flush()

    def note(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()

    def error(self, error: AtomaError) -> None:
        self.end_line()
        text = " ".join(str(error).split()) or type(error).__name__
        attempts = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
        hint = ""
        if exit_code_for(error) == EXIT_AUTH and not os.environ.get("ATOMASDK_BEARER_AUTH"):
            hint = " - set ATOMASDK_BEARER_AUTH"
        self.note(f"atoma: error: {type(error).__name__}: {text}{attempts}{hint}")


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


def _note_cut(response: ChatCompletionResponse, ui: _Output) -> None:
    if response.choices and response.choices[0].finish_reason == "length":
        ui.note("atoma: note: the answer was cut at the token limit (finish_reason=length)")


async def _chat_stream(
    core: AtomaCore, request: dict[str, Any], args: argparse.Namespace, ui: _Output
) -> int:
    from atoma_core.errors import AtomaError
    from atoma_core.result import Err

    from .chat_completions_create_stream import chat_create_stream

    started = await chat_create_stream(core, request)
    if isinstance(started, Err):
        ui.error(started.error)
        return exit_code_for(started.error)
    stream = started.value
    async with stream:
        try:
            async for chunk in stream:
                if chunk.choices and not args.json:
                    piece = chunk.choices[0].delta.content
                    if piece:
                        ui.text(piece)
        except AtomaError as error:
            ui.error(error)
            return exit_code_for(error)
        ui.end_line()
        collected = await stream.collect()  # already drained: builds the whole response
    if isinstance(collected, Err):  # pragma: no cover - the iteration above raised instead
        ui.error(collected.error)
        return exit_code_for(collected.error)
    response = collected.value
    if args.json:
        ui.json(response)
    _note_cut(response, ui)
    ui.note(_stream_stats(stream.usage, stream.metrics))
    return EXIT_OK


async def _chat_once(core: AtomaCore, request: dict[str, Any], args: argparse.Namespace, ui: _Output) -> int:
    from atoma_core.result import Err

    from .chat_completions_create import chat_create

    result = await chat_create(core, request)
    if isinstance(result, Err):
        ui.error(result.error)
        return exit_code_for(result.error)
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


async def _run(args: argparse.Namespace, prompt: str, ui: _Output) -> int:
    from atoma_core.core import AtomaCore

    request = _request(args, prompt)
    chat = _chat_once if args.no_stream else _chat_stream
    if args.sandbox:
        from atoma_core.testing import Sandbox

        # A little delay between chunks, so the demo visibly streams (keep-alives in between).
        async with Sandbox(chunk_delay=0.02) as sandbox, AtomaCore(server_url=sandbox.url) as core:
            return await chat(core, request, args, ui)
    from atoma_core.errors import InvalidRequestError

    try:
        core = AtomaCore(server_url=args.server_url)
    except InvalidRequestError as invalid:  # a bad --server-url or $ATOMASDK_*: one line, exit 2
        ui.error(invalid)
        return exit_code_for(invalid)
    async with core:
        return await chat(core, request, args, ui)


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Parse `argv` (default: `sys.argv[1:]`), run the command, return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    for stream in (out, err):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")  # a token the terminal cannot show is not an error
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, bad usage
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    prompt = args.prompt
    if prompt == "-":
        prompt = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read().strip()
    if not prompt:
        err.write("atoma: error: no prompt (pass one, or pipe it on stdin with '-')\n")
        return EXIT_USAGE
    if args.verbose:
        import logging

        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=err)
        logging.getLogger("atoma").setLevel(logging.DEBUG)
    output = _Output(out, err)
    try:
        return asyncio.run(_run(args, prompt, output))
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            output.end_line()
        err.write("atoma: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`atoma chat ... | head`): silence the final flush of stdout.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
