"""Types reach the user's editor: the installed package is followed by mypy from outside the
repository, and the request TypedDicts (atoma_core.types) catch typos in dicts and keywords.

The mypy run itself is the session fixture `user_mypy` (tests/conftest.py), shared with
tests/test_readme.py.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import typing
from pathlib import Path

import msgspec
import pytest

from atoma_core import AtomaCore, Err, errors, models, types
from atoma_funcs import AtomaSDK, chat_create

from .conftest import CHAT
from .usercheck import ROOT, Report, expected_errors, probe_sources


def test_the_editable_install_is_a_plain_path() -> None:
    """What mypy and pyright can follow: a .pth line naming the checkout, not an import hook."""
    site = Path(sysconfig.get_paths()["purelib"])
    pth = sorted(site.glob("__editable__*atoma_async*.pth"))
    if not pth:  # a regular (non-editable) install: the packages are in site-packages
        pytest.skip("atoma-async is not installed in editable mode here")
    assert pth[0].read_text().split() == [str(ROOT)]
    assert not list(site.glob("__editable___atoma_async*finder.py"))


def test_installed_types_reach_a_user_project(user_mypy: Report) -> None:
    """From a directory outside the repository, mypy --strict finds the package and its types: a
    response field used wrongly is an error, so the types are real (not Any, not missing)."""
    found = {code for _, code, _ in user_mypy.errors.get("typed_requests", [])}
    assert "import-not-found" not in found and "import-untyped" not in found, user_mypy.output
    line = next(n for n, code in expected_errors(probe_sources()["typed_requests"]) if code == "return-value")
    assert (line, "return-value") in user_mypy.codes("typed_requests"), user_mypy.output
    message = next(m for n, _, m in user_mypy.errors["typed_requests"] if n == line)
    assert '"str | None"' in message and '"int"' in message, message


def test_request_typos_are_type_errors_and_correct_requests_are_not(user_mypy: Report) -> None:
    """Every `# error: <code>` line of tests/user_code/typed_requests.py gets that error, and no
    other line gets any: `{"mesages": ...}`, `create(mesages=...)`, wrong value types and a
    `dict[str, Any]` are refused; dicts, keywords, Structs, JSON (Any) and histories pass."""
    expected = expected_errors(probe_sources()["typed_requests"])
    assert len(expected) >= 10
    assert user_mypy.codes("typed_requests") == expected, user_mypy.output


def test_every_request_struct_field_is_in_its_typeddict() -> None:
    """The TypedDicts describe the Structs exactly: the same keys, the same required ones."""
    pairs = [
        (models.ChatCompletionRequest, types.ChatCompletionRequestParam, types.ChatCompletionKeywords),
        (models.CompletionRequest, types.CompletionRequestParam, types.CompletionKeywords),
        (models.EmbeddingRequest, types.EmbeddingRequestParam, types.EmbeddingKeywords),
        (models.ImageGenerationRequest, types.ImageGenerationRequestParam, types.ImageGenerationKeywords),
        (models.NodesCreateLockRequest, types.NodesCreateLockRequestParam, types.NodesCreateLockKeywords),
    ]
    for struct, param, keywords in pairs:
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        required = {f.name for f in info.fields if f.required}
        assert set(param.__annotations__) == set(struct.__struct_fields__), struct
        assert param.__required_keys__ == required, struct
        # the keyword methods also take openai-python's per-call keywords, except the node lock,
        # whose own `timeout` field would clash
        extra = set() if struct is models.NodesCreateLockRequest else set(types.OpenAIKeywords.__annotations__)
        assert set(keywords.__annotations__) == set(struct.__struct_fields__) | extra, struct
        assert keywords.__required_keys__ == frozenset(), struct  # a request may come positionally


def test_message_typeddicts_match_the_message_structs() -> None:
    for struct, param in [
        (models.SystemMessage, types.SystemMessageParam),
        (models.DeveloperMessage, types.DeveloperMessageParam),
        (models.UserMessage, types.UserMessageParam),
        (models.AssistantMessage, types.AssistantMessageParam),
        (models.ToolMessage, types.ToolMessageParam),
    ]:
        assert set(param.__annotations__) == {"role", *struct.__struct_fields__}, struct
        assert "role" in param.__required_keys__


def test_the_types_module_needs_no_extra_at_run_time() -> None:
    """Importable on the oldest supported Python without typing_extensions or the models."""
    code = "import sys, atoma_core.types; assert 'typing_extensions' not in sys.modules; " + (
        "assert 'atoma_core.models.chat' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert typing.get_origin(types.ChatCompletionMessageParam) is typing.Union


async def test_any_mapping_is_still_accepted_and_checked_at_run_time(core: AtomaCore) -> None:
    """The TypedDicts are static only: a plain Mapping goes through, and a typo is still refused."""
    loose: dict[str, object] = dict(CHAT)
    resp = (await chat_create(core, loose)).unwrap()  # type: ignore[arg-type]
    assert resp.choices[0].message.content == "You said: hello there"
    typo = await chat_create(core, {**CHAT, "mesages": []})  # type: ignore[arg-type]
    assert isinstance(typo, Err) and isinstance(typo.error, errors.InvalidRequestError)
    assert "mesages" in str(typo.error)
    sdk = AtomaSDK(core=core)
    with pytest.raises(errors.InvalidRequestError, match="mesages"):
        await sdk.chat.create(model="m", mesages=[])  # type: ignore[call-arg]
