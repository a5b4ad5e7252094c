"""Every golden conversion output (gateway-core/tests/golden/*.expected.*) must parse as
the official SDKs' response types, so the goldens agree with the SDKs and not only with
themselves: OpenAI chat completions and chunks (`openai`), Anthropic messages and stream
events (`anthropic`), and request conversions as the SDKs' request parameter types."""

import json
import pathlib

import anthropic.types as at
import openai.types.chat as oc
import pydantic
import pytest

GOLDEN = pathlib.Path(__file__).resolve().parents[3] / "gateway-core" / "tests" / "golden"
EXPECTED = sorted(p for p in GOLDEN.rglob("*.expected.*"))


def sse_data(text):
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: ") and line[6:] != "[DONE]":
                yield json.loads(line[6:])


def test_there_are_goldens():
    assert len(EXPECTED) >= 12, EXPECTED


@pytest.mark.parametrize("path", EXPECTED, ids=lambda p: str(p.relative_to(GOLDEN)))
def test_golden_output_parses_as_the_sdk_type(path):
    name = path.name
    text = path.read_text()
    if name.startswith("request_") and name.endswith(".expected.openai.json"):
        # A chat completions request: every message and tool as the SDK's params.
        body = json.loads(text)
        pydantic.TypeAdapter(list[oc.ChatCompletionMessageParam]).validate_python(body["messages"])
        pydantic.TypeAdapter(list[oc.ChatCompletionToolParam]).validate_python(body.get("tools", []))
        assert isinstance(body["model"], str)
    elif name.startswith("request_") and name.endswith(".expected.anthropic.json"):
        body = json.loads(text)
        pydantic.TypeAdapter(list[at.MessageParam]).validate_python(body["messages"])
        pydantic.TypeAdapter(list[at.ToolParam]).validate_python(body.get("tools", []))
    elif name.startswith("error_"):
        err = json.loads(text)["error"]
        assert isinstance(err["message"], str) and isinstance(err["type"], str)
    elif name.endswith(".expected.openai.json"):
        oc.ChatCompletion.model_validate(json.loads(text))
    elif name.endswith(".expected.openai.sse"):
        chunks = list(sse_data(text))
        assert chunks
        for c in chunks:
            oc.ChatCompletionChunk.model_validate(c)
    elif name.endswith(".expected.anthropic.json"):
        at.Message.model_validate(json.loads(text))
    elif name.endswith(".expected.anthropic.sse"):
        events = list(sse_data(text))
        assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
        adapter = pydantic.TypeAdapter(at.RawMessageStreamEvent)
        for e in events:
            if e["type"] != "ping":
                adapter.validate_python(e)
    else:
        pytest.fail(f"no SDK type known for {name}")
