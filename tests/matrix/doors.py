"""The four front doors of the matrix, each driven through its protocol's official SDK.

A :class:`Door` wraps one SDK client pointed at the gateway (no retries, so an error
reaches the test on the first answer) and records the exact bytes the SDK sent (an httpx
request hook), so that passthrough cells can compare them with what the upstream got.
Every door answers the same questions in its own wire shapes: a text answer, a streamed
one (the SDK's stream helper), a tool round trip, an image, an error, and the usage the
client sees, read from the client's own usage fields.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import MASTER_KEY

TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "Weather forecast for a city"
TOOL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
MAX_TOKENS = 512


@dataclass
class Answer:
    text: str
    #: The client's own usage fields (``None`` counts as 0 for the cache fields).
    usage: dict[str, int]
    raw: Any = None
    #: Why the answer ended, in the client's vocabulary.
    stop: Any = None


@dataclass
class Call:
    id: str | None
    name: str
    args: dict[str, Any]


@dataclass
class ToolTrip:
    calls: list[Call]
    final: Answer


@dataclass
class ErrorSeen:
    exc: Exception
    status: int
    headers: dict[str, str]
    body: Any


class Door(ABC):
    name = ""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        #: Every request the SDK sent, body read (oldest first).
        self.sent: list[Any] = []
        self.sdk: Any = self.make_sdk()

    @abstractmethod
    def make_sdk(self) -> Any: ...

    def close(self) -> None:
        self.sdk.close()

    def _hook(self, request: Any) -> None:
        request.read()
        self.sent.append(request)

    def http_client(self, module: Any = httpx) -> Any:
        """An httpx client (or an ``httpx2`` one, for SDKs built on it) recording each request."""
        return module.Client(timeout=30, event_hooks={"request": [self._hook]})

    @property
    def last_sent(self) -> Any:
        return self.sent[-1]

    @abstractmethod
    def complete(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        """A text answer; ``system`` in the client's system slot, ``limit`` its output-token cap."""

    @abstractmethod
    def stream(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer: ...

    @abstractmethod
    def tool_trip(self, model: str, prompt: str, result: str) -> ToolTrip: ...

    @abstractmethod
    def stream_tool_call(self, model: str, prompt: str) -> tuple[list[Call], str]:
        """Stream an answer that calls the tool; the calls as the SDK's stream helper
        accumulated them, and the stop reason in the client's vocabulary."""

    @abstractmethod
    def stream_until_error(self, model: str, prompt: str) -> tuple[str, Any]:
        """Stream an answer that fails midway: the text received, and what ended the stream
        (the exception the SDK raised, or the Responses ``response.failed`` event)."""

    @abstractmethod
    def image(self, model: str, prompt: str, png: bytes) -> Answer: ...

    @abstractmethod
    def error(self, model: str, prompt: str) -> ErrorSeen: ...

    @abstractmethod
    def expected_usage(self, i: int, o: int, r: int, w: int) -> dict[str, int]:
        """The documented mapping of the IR's usage (input without cache, output, cache read,
        cache write) into this client's usage fields."""

    def result_as_sent(self, result: str) -> Any:
        """The tool result as this client puts it on the wire."""
        return result


# --------------------------------------------------------------------------- Anthropic Messages


class AnthropicDoor(Door):
    name = "anthropic"

    def make_sdk(self) -> Any:
        return anthropic.Anthropic(
            base_url=self.gateway.base_url, api_key=MASTER_KEY, max_retries=0, http_client=self.http_client(httpx2)
        )

    @staticmethod
    def _usage(u: Any) -> dict[str, int]:
        return {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens or 0,
            "cache_creation_input_tokens": u.cache_creation_input_tokens or 0,
        }

    def _answer(self, msg: Any) -> Answer:
        text = "".join(b.text for b in msg.content if b.type == "text")
        return Answer(text, self._usage(msg.usage), msg, msg.stop_reason)

    @staticmethod
    def _params(model: str, prompt: str, system: str | None, limit: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "max_tokens": limit or MAX_TOKENS}
        params["messages"] = [{"role": "user", "content": prompt}]
        if system is not None:
            params["system"] = system
        return params

    def complete(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        return self._answer(self.sdk.messages.create(**self._params(model, prompt, system, limit)))

    def stream(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        with self.sdk.messages.stream(**self._params(model, prompt, system, limit)) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        answer = self._answer(final)
        answer.text = text
        return answer

    def tool_trip(self, model: str, prompt: str, result: str) -> ToolTrip:
        tools = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_SCHEMA}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        first = self.sdk.messages.create(model=model, max_tokens=MAX_TOKENS, messages=messages, tools=tools)
        assert first.stop_reason == "tool_use"
        uses = [b for b in first.content if b.type == "tool_use"]
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": result} for b in uses]}
        )
        second = self.sdk.messages.create(model=model, max_tokens=MAX_TOKENS, messages=messages, tools=tools)
        return ToolTrip([Call(b.id, b.name, b.input) for b in uses], self._answer(second))

    def stream_tool_call(self, model: str, prompt: str) -> tuple[list[Call], str]:
        tools = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_SCHEMA}]
        messages = [{"role": "user", "content": prompt}]
        with self.sdk.messages.stream(model=model, max_tokens=MAX_TOKENS, messages=messages, tools=tools) as s:
            final = s.get_final_message()
        uses = [b for b in final.content if b.type == "tool_use"]
        return [Call(b.id, b.name, b.input) for b in uses], final.stop_reason

    def stream_until_error(self, model: str, prompt: str) -> tuple[str, Any]:
        text: list[str] = []
        try:
            with self.sdk.messages.stream(
                model=model, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": prompt}]
            ) as s:
                text.extend(s.text_stream)
        except anthropic.APIStatusError as e:
            return "".join(text), e
        raise AssertionError("the stream ended without an error")

    def image(self, model: str, prompt: str, png: bytes) -> Answer:
        source = {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()}
        content = [{"type": "image", "source": source}, {"type": "text", "text": prompt}]
        msg = self.sdk.messages.create(
            model=model, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": content}]
        )
        return self._answer(msg)

    def error(self, model: str, prompt: str) -> ErrorSeen:
        try:
            self.complete(model, prompt)
        except anthropic.APIStatusError as e:
            return ErrorSeen(e, e.status_code, dict(e.response.headers), e.response.json())
        raise AssertionError("no error raised")

    def expected_usage(self, i: int, o: int, r: int, w: int) -> dict[str, int]:
        return {"input_tokens": i, "output_tokens": o, "cache_read_input_tokens": r, "cache_creation_input_tokens": w}


# --------------------------------------------------------------------------- OpenAI (both APIs)


class _OpenAIDoor(Door):
    def make_sdk(self) -> Any:
        return openai.OpenAI(
            base_url=self.gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, http_client=self.http_client()
        )

    def error(self, model: str, prompt: str) -> ErrorSeen:
        try:
            self.complete(model, prompt)
        except openai.APIStatusError as e:
            return ErrorSeen(e, e.status_code, dict(e.response.headers), e.response.json())
        raise AssertionError("no error raised")


class ChatDoor(_OpenAIDoor):
    name = "openai_chat"

    @staticmethod
    def _usage(u: Any) -> dict[str, int]:
        details = u.prompt_tokens_details
        return {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": (details.cached_tokens if details else None) or 0,
            "cache_write_tokens": (details.cache_write_tokens if details else None) or 0,
        }

    def _answer(self, c: Any) -> Answer:
        usage = self._usage(c.usage) if c.usage is not None else {}
        return Answer(c.choices[0].message.content or "", usage, c, c.choices[0].finish_reason)

    @staticmethod
    def _params(model: str, prompt: str, system: str | None, limit: int | None) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}] if system is not None else []
        params: dict[str, Any] = {"model": model, "messages": [*messages, {"role": "user", "content": prompt}]}
        if limit is not None:
            params["max_completion_tokens"] = limit
        return params

    def complete(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        return self._answer(self.sdk.chat.completions.create(**self._params(model, prompt, system, limit)))

    def stream(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        text: list[str] = []
        params = self._params(model, prompt, system, limit)
        with self.sdk.chat.completions.stream(**params, stream_options={"include_usage": True}) as s:
            try:
                for event in s:
                    if event.type == "content.delta":
                        text.append(event.delta)
                final = s.get_final_completion()
            except openai.LengthFinishReasonError as e:
                # The SDK's helper refuses to "parse" an answer cut at the limit (with OpenAI
                # itself too); the accumulated completion is on the error (no usage yet).
                final = e.completion
        answer = self._answer(final)
        answer.text = "".join(text)
        return answer

    @staticmethod
    def _tools() -> list[dict[str, Any]]:
        function = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_SCHEMA}
        return [{"type": "function", "function": function}]

    def tool_trip(self, model: str, prompt: str, result: str) -> ToolTrip:
        tools = self._tools()
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        first = self.sdk.chat.completions.create(model=model, messages=messages, tools=tools)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        # The assistant message goes back as the SDK gave it (extra fields included, as a
        # client that appends ``message`` to its history does).
        messages.append(choice.message.model_dump(exclude_none=True))
        messages += [{"role": "tool", "tool_call_id": c.id, "content": result} for c in calls]
        second = self.sdk.chat.completions.create(model=model, messages=messages, tools=tools)
        found = [Call(c.id, c.function.name, _json(c.function.arguments)) for c in calls]
        return ToolTrip(found, self._answer(second))

    def stream_tool_call(self, model: str, prompt: str) -> tuple[list[Call], str]:
        with self.sdk.chat.completions.stream(
            model=model, messages=[{"role": "user", "content": prompt}], tools=self._tools()
        ) as s:
            final = s.get_final_completion()
        choice = final.choices[0]
        calls = choice.message.tool_calls or []
        return [Call(c.id, c.function.name, _json(c.function.arguments)) for c in calls], choice.finish_reason

    def stream_until_error(self, model: str, prompt: str) -> tuple[str, Any]:
        text: list[str] = []
        try:
            with self.sdk.chat.completions.stream(model=model, messages=[{"role": "user", "content": prompt}]) as s:
                text.extend(e.delta for e in s if e.type == "content.delta")
        except openai.APIError as e:
            return "".join(text), e
        raise AssertionError("the stream ended without an error")

    def image(self, model: str, prompt: str, png: bytes) -> Answer:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
        return self._answer(
            self.sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
        )

    def expected_usage(self, i: int, o: int, r: int, w: int) -> dict[str, int]:
        prompt = i + r + w
        return {
            "prompt_tokens": prompt,
            "completion_tokens": o,
            "total_tokens": prompt + o,
            "cached_tokens": r,
            "cache_write_tokens": w,
        }


class ResponsesDoor(_OpenAIDoor):
    name = "openai_responses"

    @staticmethod
    def _usage(u: Any) -> dict[str, int]:
        details = u.input_tokens_details
        return {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": (details.cached_tokens if details else None) or 0,
            "cache_write_tokens": (details.cache_write_tokens if details else None) or 0,
        }

    def _answer(self, r: Any) -> Answer:
        reason = r.incomplete_details.reason if r.incomplete_details else None
        return Answer(r.output_text, self._usage(r.usage) if r.usage else {}, r, (r.status, reason))

    @staticmethod
    def _params(model: str, prompt: str, system: str | None, limit: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "input": prompt, "store": False}
        if system is not None:
            params["instructions"] = system
        if limit is not None:
            params["max_output_tokens"] = limit
        return params

    def complete(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        return self._answer(self.sdk.responses.create(**self._params(model, prompt, system, limit)))

    def stream(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        text: list[str] = []
        final = None
        with self.sdk.responses.stream(**self._params(model, prompt, system, limit)) as s:
            for event in s:
                if event.type == "response.output_text.delta":
                    text.append(event.delta)
                elif event.type in ("response.completed", "response.incomplete"):
                    # ``get_final_response`` only knows ``response.completed`` (with OpenAI too)
                    final = event.response
        assert final is not None, "the stream ended without response.completed or response.incomplete"
        answer = self._answer(final)
        answer.text = "".join(text)
        return answer

    @staticmethod
    def _tools() -> list[dict[str, Any]]:
        tool = {"type": "function", "name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_SCHEMA}
        return [{**tool, "strict": False}]

    def tool_trip(self, model: str, prompt: str, result: str) -> ToolTrip:
        tools = self._tools()
        items: list[Any] = [{"role": "user", "content": prompt}]
        first = self.sdk.responses.create(model=model, input=items, tools=tools, store=False)
        calls = [o for o in first.output if o.type == "function_call"]
        items += [o.model_dump(exclude_none=True) for o in first.output]
        items += [{"type": "function_call_output", "call_id": c.call_id, "output": result} for c in calls]
        second = self.sdk.responses.create(model=model, input=items, tools=tools, store=False)
        found = [Call(c.call_id, c.name, _json(c.arguments)) for c in calls]
        return ToolTrip(found, self._answer(second))

    def stream_tool_call(self, model: str, prompt: str) -> tuple[list[Call], str]:
        with self.sdk.responses.stream(model=model, input=prompt, tools=self._tools(), store=False) as s:
            final = s.get_final_response()
        calls = [o for o in final.output if o.type == "function_call"]
        return [Call(c.call_id, c.name, _json(c.arguments)) for c in calls], final.status

    def stream_until_error(self, model: str, prompt: str) -> tuple[str, Any]:
        text: list[str] = []
        with self.sdk.responses.stream(model=model, input=prompt, store=False) as s:
            for event in s:
                if event.type == "response.output_text.delta":
                    text.append(event.delta)
                elif event.type == "response.failed":
                    return "".join(text), event
        raise AssertionError("the stream ended without response.failed")

    def image(self, model: str, prompt: str, png: bytes) -> Answer:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        content = [{"type": "input_text", "text": prompt}, {"type": "input_image", "image_url": url, "detail": "auto"}]
        return self._answer(
            self.sdk.responses.create(model=model, input=[{"role": "user", "content": content}], store=False)
        )

    def expected_usage(self, i: int, o: int, r: int, w: int) -> dict[str, int]:
        total_input = i + r + w
        return {
            "input_tokens": total_input,
            "output_tokens": o,
            "total_tokens": total_input + o,
            "cached_tokens": r,
            "cache_write_tokens": w,
        }


# --------------------------------------------------------------------------- Gemini


class GeminiDoor(Door):
    name = "gemini"

    def make_sdk(self) -> Any:
        self._http = self.http_client()
        options = types.HttpOptions(base_url=self.gateway.base_url, httpx_client=self._http)
        return genai.Client(api_key=MASTER_KEY, http_options=options)

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _usage(u: Any) -> dict[str, int]:
        return {
            "prompt_token_count": u.prompt_token_count,
            "candidates_token_count": u.candidates_token_count or 0,
            "total_token_count": u.total_token_count,
            "cached_content_token_count": u.cached_content_token_count or 0,
        }

    def _answer(self, r: Any) -> Answer:
        usage = self._usage(r.usage_metadata) if r.usage_metadata else {}
        return Answer(r.text or "", usage, r, r.candidates[0].finish_reason)

    @staticmethod
    def _config(system: str | None = None, limit: int | None = None, tools: bool = False) -> Any:
        config = types.GenerateContentConfig(system_instruction=system, max_output_tokens=limit)
        if tools:
            decl = types.FunctionDeclaration(
                name=TOOL_NAME, description=TOOL_DESCRIPTION, parameters_json_schema=TOOL_SCHEMA
            )
            config.tools = [types.Tool(function_declarations=[decl])]
            config.automatic_function_calling = types.AutomaticFunctionCallingConfig(disable=True)
        return config

    def complete(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        config = self._config(system, limit)
        return self._answer(self.sdk.models.generate_content(model=model, contents=prompt, config=config))

    def stream(self, model: str, prompt: str, *, system: str | None = None, limit: int | None = None) -> Answer:
        config = self._config(system, limit)
        chunks = list(self.sdk.models.generate_content_stream(model=model, contents=prompt, config=config))
        last = chunks[-1]
        usage = self._usage(last.usage_metadata) if last.usage_metadata else {}
        return Answer("".join(c.text or "" for c in chunks), usage, chunks, last.candidates[0].finish_reason)

    def stream_tool_call(self, model: str, prompt: str) -> tuple[list[Call], str]:
        chunks = list(
            self.sdk.models.generate_content_stream(model=model, contents=prompt, config=self._config(tools=True))
        )
        calls = [c for chunk in chunks for c in chunk.function_calls or ()]
        finish = chunks[-1].candidates[0].finish_reason
        return [Call(c.id, c.name, dict(c.args)) for c in calls], finish.value if finish else ""

    def stream_until_error(self, model: str, prompt: str) -> tuple[str, Any]:
        text: list[str] = []
        try:
            for chunk in self.sdk.models.generate_content_stream(model=model, contents=prompt):
                text.append(chunk.text or "")
        except genai_errors.APIError as e:
            return "".join(text), e
        raise AssertionError("the stream ended without an error")

    def tool_trip(self, model: str, prompt: str, result: str) -> ToolTrip:
        config = self._config(tools=True)
        contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=prompt)])]
        first = self.sdk.models.generate_content(model=model, contents=contents, config=config)
        calls = first.function_calls or []
        contents.append(first.candidates[0].content)
        answers = [
            types.Part(
                function_response=types.FunctionResponse(id=c.id, name=c.name, response=self.result_as_sent(result))
            )
            for c in calls
        ]
        contents.append(types.Content(role="user", parts=answers))
        second = self.sdk.models.generate_content(model=model, contents=contents, config=config)
        return ToolTrip([Call(c.id, c.name, dict(c.args)) for c in calls], self._answer(second))

    def result_as_sent(self, result: str) -> Any:
        return {"output": result}  # Google's documented shape for a function's result

    def image(self, model: str, prompt: str, png: bytes) -> Answer:
        parts = [types.Part.from_bytes(data=png, mime_type="image/png"), types.Part(text=prompt)]
        return self._answer(
            self.sdk.models.generate_content(model=model, contents=[types.Content(role="user", parts=parts)])
        )

    def error(self, model: str, prompt: str) -> ErrorSeen:
        try:
            self.complete(model, prompt)
        except genai_errors.APIError as e:
            headers = dict(e.response.headers) if getattr(e, "response", None) is not None else {}
            return ErrorSeen(e, e.code, headers, e.details)
        raise AssertionError("no error raised")

    def expected_usage(self, i: int, o: int, r: int, w: int) -> dict[str, int]:
        prompt = i + r + w
        return {
            "prompt_token_count": prompt,
            "candidates_token_count": o,
            "total_token_count": prompt + o,
            "cached_content_token_count": r,
        }


def _json(text: str) -> dict[str, Any]:
    return json.loads(text)


DOOR_CLASSES: dict[str, type[Door]] = {
    "anthropic": AnthropicDoor,
    "openai_chat": ChatDoor,
    "openai_responses": ResponsesDoor,
    "gemini": GeminiDoor,
}
