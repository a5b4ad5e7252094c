"""The official `openai` SDK's Responses API (what Codex CLI speaks) against a real
`burncloud router`, onto an OpenAI-compatible, an Anthropic and a Gemini channel."""

import json

import openai
import pytest

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    }
]


def client(gateway, key):
    return openai.OpenAI(base_url=gateway.base + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize(
    "model,text",
    [("gpt-4o-mini", "Hello from fake"), ("claude-sonnet-4-5", "Hello from claude"), ("gemini-2.5-flash", "Hello from gemini")],
)
def test_responses_create_and_stream(gateway, sk_token, model, text):
    c = client(gateway, sk_token())
    r = c.responses.create(model=model, instructions="Be brief.", input="Hello")
    assert r.status == "completed"
    assert r.output_text == text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    with c.responses.stream(model=model, input=[{"role": "user", "content": "Hello"}]) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == text
    assert final.output_text == text
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


def test_responses_function_call_round_trip(gateway, sk_token):
    c = client(gateway, sk_token())
    with c.responses.stream(model="gpt-4o-mini", input="Weather in Paris?", tools=TOOLS) as s:
        first = s.get_final_response()
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}
    second = c.responses.create(
        model="gpt-4o-mini",
        tools=TOOLS,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
        ],
    )
    assert second.output_text == "The tool said: 18C"


def test_responses_errors(gateway, sk_token):
    with pytest.raises(openai.BadRequestError) as e:
        client(gateway, sk_token()).responses.create(model="gpt-4o-mini", input="x", previous_response_id="resp_1")
    assert e.value.code == "invalid_request"
    with pytest.raises(openai.NotFoundError):
        client(gateway, sk_token()).responses.create(model="nope", input="x")
