"""The official `anthropic` SDK against a real `burncloud router` whose model is served by an
OpenAI-compatible channel (converted both ways), and the official `openai` SDK against a
model served by an Anthropic channel."""

import json

import anthropic
import openai
import pytest

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


def claude(gateway, key):
    return anthropic.Anthropic(base_url=gateway.base, api_key=key, max_retries=0)


def test_messages_create_onto_an_openai_channel(gateway, sk_token):
    msg = claude(gateway, sk_token()).messages.create(
        model="gpt-4o-mini",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from fake"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 12 and msg.usage.output_tokens == 3


def test_messages_stream_onto_an_openai_channel(gateway, sk_token):
    client = claude(gateway, sk_token())
    with client.messages.stream(
        model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "Hello from fake"
    assert len(pieces) == 3, "relayed piece by piece, not buffered"
    assert final.content[0].text == "Hello from fake"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip_onto_an_openai_channel(gateway, sk_token, stream):
    client = claude(gateway, sk_token())
    question = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.messages.stream(model="gpt-4o-mini", max_tokens=64, tools=[WEATHER], messages=question) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model="gpt-4o-mini", max_tokens=64, tools=[WEATHER], messages=question)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"location": "Paris"}
    answer = client.messages.create(
        model="gpt-4o-mini",
        max_tokens=64,
        tools=[WEATHER],
        messages=question
        + [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}]},
        ],
    )
    assert answer.content[0].text == "The tool said: 18C and sunny"


def test_errors_map_to_anthropic_sdk_exceptions(gateway, sk_token):
    with pytest.raises(anthropic.AuthenticationError) as e:
        claude(gateway, "sk-wrong").messages.create(model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError):
        claude(gateway, sk_token()).messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(gateway, sk_token()).messages.create(model="gpt-4o-mini", max_tokens=5, messages=[{"role": "tool", "content": "x"}])
    assert "messages.0.role" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.PermissionDeniedError):
        claude(gateway, sk_token(models="text-embedding-3-small")).messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_openai_sdk_through_an_anthropic_channel(gateway, sk_token):
    client = openai.OpenAI(base_url=gateway.base + "/v1", api_key=sk_token(), max_retries=0)
    r = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert r.choices[0].message.content == "Hello from claude"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 20 and r.usage.completion_tokens == 5
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]}}]
    stream = client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=tools,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, args, name, finish, usage = "", "", None, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert text == "Let me check."
    assert name == "get_weather" and json.loads(args) == {"location": "Paris"}
    assert finish == "tool_calls"
    assert usage.prompt_tokens == 20 and usage.completion_tokens == 5


def test_openai_sdk_through_a_gemini_channel(gateway, sk_token):
    client = openai.OpenAI(base_url=gateway.base + "/v1", api_key=sk_token(), max_retries=0)
    r = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content == "Hello from gemini"
    assert r.usage.prompt_tokens == 30 and r.usage.completion_tokens == 10
    pieces = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["Hello", " from", " gemini"]


def test_anthropic_sdk_onto_a_gemini_channel(gateway, sk_token):
    with claude(gateway, sk_token()).messages.stream(
        model="gemini-2.5-flash", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello from gemini"
    assert final.usage.output_tokens == 10
