"""Image generation (`POST /v1/images/generations`): `images_generate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import ImageGenerationRequestParam

__all__ = ["images_generate"]

IMAGES_PATH = "/v1/images/generations"

_GENERATE = Operation(
    "image_generations_create",
    "POST",
    IMAGES_PATH,
    json_response(ImageGenerationResponse),
    request_type=ImageGenerationRequest,
)


async def images_generate(
    core: AtomaCore,
    request: ImageGenerationRequest | ImageGenerationRequestParam,
    options: RequestOptions | None = None,
) -> Result[ImageGenerationResponse, AtomaError]:
    """Generate images from a prompt. `Ok(ImageGenerationResponse)`: `.data[i].url` / `.b64_json`."""
    return await call(core, _GENERATE, request, options)
