"""The `atoma` command line: `atoma chat "prompt"`, `atoma models`, `atoma embed "text"`, `atoma batch
IN.jsonl -o OUT.jsonl` (also `python -m atoma_funcs`): parsing, output, exit codes. The commands
are in `_cli_commands`.

Answers go to stdout, usage and timings to stderr. Failures are one line on stderr and an exit
code chosen by the error's class (see `EPILOG`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from atoma_core.errors import AtomaError

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
    "Output",
    "build_parser",
    "exit_code_for",
    "exit_code_of",
    "main",
]

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
DEFAULT_EMBEDDING_MODEL = "intfloat/multilingual-e5-large-instruct"

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
  ATOMASDK_BEARER_AUTH=... atoma chat "Hi" --max-tokens 64 --timeout 30
  echo "Summarise this" | atoma chat - --json
  atoma models
  atoma embed "first text" "second text" --dimensions 256
  atoma batch requests.jsonl -o results.jsonl --concurrency 16 --rpm 600 --tpm 200000
"""


def exit_code_for(error: BaseException) -> int:
    """The exit code for an SDK error, by class (the table in `EPILOG`)."""
    from atoma_core.errors import APIError

    return exit_code_of(type(error), error.status_code if isinstance(error, APIError) else None)


def exit_code_of(kind: type[BaseException], status: int | None = None) -> int:
    """The exit code for an error class (and an `APIError`'s status)."""
    from atoma_core import errors

    if issubclass(kind, errors.StreamError):
        return EXIT_STREAM
    if issubclass(kind, errors.APIError):
        if status in (401, 403):
            return EXIT_AUTH
        if status is not None and (status == 429 or status >= 500):
            return EXIT_SERVER
        return EXIT_API
    if issubclass(kind, errors.APIConnectionError):
        return EXIT_CONNECTION
    if issubclass(kind, errors.InvalidRequestError):
        return EXIT_USAGE
    if issubclass(kind, errors.ResponseValidationError):
        return EXIT_RESPONSE
    return EXIT_UNEXPECTED


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value


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
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--server-url", metavar="URL", help="API base URL (default: $ATOMASDK_SERVER_URL)")
    where.add_argument(
        "--sandbox", action="store_true", help="start the bundled sandbox server in-process and use it"
    )
    common.add_argument("--json", action="store_true", help="print the whole response as JSON on stdout")
    common.add_argument("--timeout", type=_positive_float, metavar="S", help="give up after S seconds in all")
    common.add_argument("--verbose", "-v", action="store_true", help='DEBUG log of the "atoma" logger')

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[common],
            help=help,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    chat = command(
        "chat",
        "send one prompt and stream the answer",
        "Send one prompt; stream the answer to stdout, usage and timings to stderr.",
    )
    chat.add_argument("prompt", nargs="?", default="-", help='the user message ("-" or none: read stdin)')
    chat.add_argument("--model", "-m", default=DEFAULT_MODEL, help="model name (default: %(default)s)")
    chat.add_argument("--system", "-s", metavar="TEXT", help="a system message to send first")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="limit the answer to N tokens")
    chat.add_argument("--temperature", "-t", type=float, metavar="T", help="sampling temperature")
    chat.add_argument("--no-stream", action="store_true", help="one request for the whole answer")

    command("models", "list the models the server serves", "Print the id of every model, one per line.")

    embed = command("embed", "embed texts", "Print one JSON vector per text, one per line.")
    embed.add_argument(
        "texts", nargs="*", default=["-"], help='texts to embed ("-" or none: one per stdin line)'
    )
    embed.add_argument(
        "--model", "-m", default=DEFAULT_EMBEDDING_MODEL, help="model name (default: %(default)s)"
    )
    embed.add_argument("--dimensions", type=_positive_int, metavar="N", help="ask for N-dimensional vectors")

    batch = command(
        "batch",
        "run a JSONL file of requests, rate-limited and resumable",
        "Run the OpenAI batch-input lines of IN ({custom_id, method, url, body}; url one of"
        " /v1/chat/completions, /v1/completions, /v1/confidential/completions, /v1/embeddings) and"
        " append one batch-output line per request to OUT as it finishes. Rerun the same command"
        " to resume: custom_ids already in OUT are skipped. Bad lines are reported as 'line N: why'"
        " and skipped. --timeout applies to each request.",
    )
    batch.add_argument("input", metavar="IN.jsonl", help="batch-input lines, one JSON object per line")
    batch.add_argument("--output", "-o", required=True, metavar="OUT.jsonl", help="batch-output lines")
    batch.add_argument(
        "--concurrency", type=_positive_int, default=32, metavar="N", help="requests in flight (default 32)"
    )
    batch.add_argument("--rpm", type=_positive_float, metavar="N", help="at most N requests a minute")
    batch.add_argument(
        "--tpm", type=_positive_float, metavar="N", help="at most N tokens a minute (estimated)"
    )
    batch.add_argument(
        "--limiter",
        metavar="URL",
        help="share --rpm/--tpm with every process using this Redis (redis://host:6379/0; extra 'redis')",
    )
    batch.add_argument(
        "--limiter-unavailable",
        choices=("local", "fail"),
        default="local",
        help="if Redis cannot be reached: limit this process alone with a warning (default), or fail",
    )
    return parser


class Output:
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

    def json(self, response: object) -> None:
        import msgspec

        self.out.write(msgspec.json.format(msgspec.json.encode(response), indent=2).decode() + "\n")
        self.out.flush()

    def note(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()

    def fail(self, error: AtomaError) -> int:
        """Report the error on stderr; the exit code for it."""
        self.error(error)
        return exit_code_for(error)

    def error(self, error: AtomaError) -> None:
        self.end_line()
        text = " ".join(str(error).split()) or type(error).__name__
        attempts = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
        hint = ""
        if exit_code_for(error) == EXIT_AUTH and not os.environ.get("ATOMASDK_BEARER_AUTH"):
            hint = " - set ATOMASDK_BEARER_AUTH"
        self.note(f"atoma: error: {type(error).__name__}: {text}{attempts}{hint}")


async def _run(args: argparse.Namespace, ui: Output) -> int:
    from atoma_core.config import Timeouts
    from atoma_core.core import AtomaCore

    from . import _cli_commands

    run = getattr(_cli_commands, args.command)
    timeouts = Timeouts(total=args.timeout) if args.timeout is not None else None
    if args.sandbox:
        from atoma_core.testing import Sandbox

        # A little delay between chunks, so the demo visibly streams (keep-alives in between).
        async with (
            Sandbox(chunk_delay=0.02) as sandbox,
            AtomaCore(server_url=sandbox.url, timeouts=timeouts) as core,
        ):
            return int(await run(core, args, ui))
    from atoma_core.errors import InvalidRequestError

    try:
        core = AtomaCore(server_url=args.server_url, timeouts=timeouts)
    except InvalidRequestError as invalid:  # a bad --server-url or $ATOMASDK_*: one line, exit 2
        return ui.fail(invalid)
    async with core:
        return int(await run(core, args, ui))


def _stdin_text() -> str:
    return "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()


def _read_inputs(args: argparse.Namespace) -> str | None:
    """Fill in what a command reads from stdin ("-"); say what is missing, if anything."""
    if args.command == "chat":
        if args.prompt == "-":
            args.prompt = _stdin_text().strip()
        return None if args.prompt else "no prompt (pass one, or pipe it on stdin with '-')"
    if args.command == "embed":
        if args.texts == ["-"]:
            args.texts = [line for line in _stdin_text().splitlines() if line.strip()]
        return None if args.texts else "no text to embed (pass some, or pipe lines on stdin)"
    return None


def _parse_and_run(argv: list[str] | None, output: Output) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, bad usage
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    problem = _read_inputs(args)
    if problem is not None:
        output.err.write(f"atoma: error: {problem}\n")
        return EXIT_USAGE
    if args.verbose:
        import logging

        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=output.err)
        logging.getLogger("atoma").setLevel(logging.DEBUG)
    return asyncio.run(_run(args, output))


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Parse `argv` (default: `sys.argv[1:]`), run the command, return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    for stream in (out, err):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")  # a token the terminal cannot show is not an error
    output = Output(out, err)
    try:
        return _parse_and_run(argv, output)
    except KeyboardInterrupt:  # anywhere, waiting on stdin included: one line, no traceback
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
