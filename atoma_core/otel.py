"""OpenTelemetry tracing and metrics for one core, following the GenAI semantic conventions.

    from atoma_core.otel import instrument
    instrumentation = instrument(core)      # global providers unless given
    ...
    instrumentation.uninstrument()

Each chat, completion or embeddings call (confidential ones too) gets a CLIENT span named
"{operation} {model}" (`chat meta-llama/...`) with the request settings, the response id, model,
finish reasons and token usage, an `atoma.attempt` event per HTTP attempt, and status ERROR with
`error.type` on failure. A stream's span ends when the stream ends, with
`gen_ai.response.time_to_first_chunk` (the first chunk that carries content). Every request
carries the W3C `traceparent` (and `tracestate`) of its span; other operations (models, nodes,
health, images) get no span, and carry the caller's current trace context.
Metrics: `gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
`gen_ai.client.operation.time_to_first_chunk`. Prompts and answers are recorded only when asked
to; the bearer token never.

Needs the `otel` extra (`opentelemetry-api`): importing this module without it works, and
`instrument()` says what to install. It is built on the core's hooks (`Hooks`), nothing else.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from .config import Hooks
    from .core import AtomaCore

__all__ = ["CAPTURE_CONTENT_ENV", "INSTALL_HINT", "Instrumentation", "instrument"]

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The environment variable that, set to `true`, records prompts and answers on spans (off by default)."""
_CAPTURE_ON = frozenset({"true", "1", "span_only", "span_and_event"})
INSTALL_HINT = 'pip install "atoma-async[otel]"'
"""What to install for tracing; the `MissingDependencyError` of `instrument()` names it."""

_active: weakref.WeakKeyDictionary[AtomaCore, Instrumentation] = weakref.WeakKeyDictionary()


class Instrumentation:
    """The tracing installed on one core; `uninstrument()` (or leaving `with`) removes it.
    Calls already in flight, open streams included, still end their spans."""

    def __init__(self, core: AtomaCore, hooks: Hooks) -> None:
        self._core: weakref.ReferenceType[AtomaCore] = weakref.ref(core)
        self._hooks = hooks

    def uninstrument(self) -> None:
        """Remove the hooks from the core, from its next call on (idempotent)."""
        core = self._core()
        if core is not None:
            core.remove_hooks(self._hooks)
            if _active.get(core) is self:
                del _active[core]

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstrument()


def instrument(
    core: AtomaCore,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
) -> Instrumentation:
    """Trace and measure every call made through `core`, next to the core's own hooks.

    tracer_provider / meter_provider: default to OpenTelemetry's global ones.
    capture_content: record prompts and answers (`gen_ai.input.messages`,
        `gen_ai.output.messages`). None: as the environment variable
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT says ("true"), else off.
    Raises `MissingDependencyError` naming the extra if OpenTelemetry is missing, and
    `InvalidRequestError` (a ValueError) if `core` is instrumented already.
    """
    try:
        from ._otel_hooks import Telemetry
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        from .errors import MissingDependencyError

        message = f"tracing needs the opentelemetry-api package: {INSTALL_HINT}"
        raise MissingDependencyError(message, package="opentelemetry-api", extra="otel") from exc
    if core in _active:
        from .errors import InvalidRequestError

        raise InvalidRequestError("this core is instrumented already: uninstrument() it first")
    if capture_content is None:
        capture_content = _env_capture(os.environ.get(CAPTURE_CONTENT_ENV))
    telemetry = Telemetry(tracer_provider, meter_provider, capture_content)
    core.add_hooks(telemetry.hooks)
    instrumentation = _active[core] = Instrumentation(core, telemetry.hooks)
    return instrumentation


def _env_capture(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _CAPTURE_ON
