"""A model server on 127.0.0.1 that follows a script, for tests and offline demos.

Speaks the two streaming APIs pi uses: Anthropic Messages (`POST /v1/messages`)
and OpenAI chat completions (`POST /v1/chat/completions`). Every request is
recorded (conversation, system prompt, the chosen task, failed expectations —
never headers, so no credential lands in the record) and can be read back at
`GET /_script/requests` (and emptied with `DELETE /_script/requests`).

    python -m reef_devkit.scripted_model --script demo.yaml --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from reef_devkit.scripted_model.script import Choice, Message, Script, Step, is_summary_request

READY = "scripted-model ready:"
SCRIPT_KEY = web.AppKey("script", Script)
RECORD_KEY = web.AppKey("record", list)
BRIEF_TEXT = 200             # characters of the latest user message in a brief record


def build_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SCRIPT_KEY] = script
    app[RECORD_KEY] = []
    app.add_routes([
        web.post("/v1/messages", anthropic_messages),
        web.post("/v1/chat/completions", openai_chat),
        web.get("/_script/requests", recorded),
        web.delete("/_script/requests", forget),
        web.put("/_script/script", replace_script),
    ])
    return app


# -- request parsing ------------------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
        elif block.get("type") == "tool_use":
            parts.append(json.dumps(block.get("input", {}), sort_keys=True))
    return "\n".join(parts)


def anthropic_conversation(body: dict[str, Any]) -> list[Message]:
    messages = []
    for message in body.get("messages", []):
        content = message.get("content")
        is_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
        messages.append(Message(str(message.get("role")), _text_of(content), is_result))
    return messages


def openai_conversation(body: dict[str, Any]) -> list[Message]:
    messages = []
    for message in body.get("messages", []):
        role = str(message.get("role"))
        if role in ("system", "developer"):
            continue
        text = _text_of(message.get("content"))
        for call in message.get("tool_calls") or []:
            text += "\n" + str(call.get("function", {}).get("arguments", ""))
        if role == "tool":
            messages.append(Message("user", text, True))
        else:
            messages.append(Message(role, text))
    return messages


def _system(body: dict[str, Any], api: str) -> str:
    if api == "anthropic":
        return _text_of(body.get("system", ""))
    return "\n".join(_text_of(m.get("content")) for m in body.get("messages", [])
                     if m.get("role") in ("system", "developer"))


def choose(script: Script, body: dict[str, Any], api: str,
           conversation: list[Message]) -> Choice:
    """A summary request (pi compacting) gets the summary; any other, its task's step."""
    if is_summary_request(_system(body, api)):
        return script.summarize(conversation)
    return script.choose(conversation)


def _record(request: web.Request, api: str, body: dict[str, Any],
            conversation: list[Message], choice: Choice) -> dict[str, Any]:
    """Log a request (GET /_script/requests); the handler adds the usage it reports."""
    entry: dict[str, Any] = {
        "api": api,
        "model": body.get("model"),
        "system": _system(body, api),
        "conversation": [{"role": m.role, "text": m.text, "toolResult": m.is_tool_result}
                         for m in conversation],
        "task": choice.task,
        "answer": choice.step.text,
        "failures": list(choice.failures),
        "time": time.time(),
    }
    request.app[RECORD_KEY].append(entry)
    return entry


def _call_id(conversation: list[Message], index: int) -> str:
    digest = hashlib.sha256(f"{len(conversation)}:{conversation[-1].text if conversation else ''}"
                            .encode()).hexdigest()[:16]
    return f"call_{digest}_{index}"


def _pieces(text: str, chunks: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // chunks))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


# -- Anthropic ------------------------------------------------------------------------------
async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    conversation = anthropic_conversation(body)
    choice = choose(request.app[SCRIPT_KEY], body, "anthropic", conversation)
    entry = _record(request, "anthropic", body, conversation, choice)
    step = choice.step
    if step.error_status:
        return web.json_response({"type": "error", "error": {
            "type": "api_error", "message": step.error_message or "scripted failure"}},
            status=step.error_status)
    response = await _sse(request)

    async def send(event: str, data: dict[str, Any]) -> None:
        await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

    # As with Anthropic's prompt caching: the conversation before the newest message is
    # read from the cache, only the newest message is new input.
    input_tokens = _tokens(conversation[-1].text) if conversation else 0
    cached_tokens = sum(_tokens(m.text) for m in conversation[:-1])
    output_tokens = _tokens(step.text) + 10 * len(step.tool_calls)
    entry["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_read_input_tokens": cached_tokens}
    await send("message_start", {"type": "message_start", "message": {
        "id": f"msg_{_call_id(conversation, 0)}", "type": "message", "role": "assistant",
        "model": body.get("model", "scripted"), "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                                         "cache_read_input_tokens": cached_tokens,
                                         "cache_creation_input_tokens": 0}}})
    index = 0
    if step.text:
        await send("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
        for piece in _pieces(step.text, step.chunks):
            await asyncio.sleep(step.delay)
            await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": piece}})
        await send("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    for number, call in enumerate(step.tool_calls):
        await asyncio.sleep(step.delay)
        await send("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {
                                               "type": "tool_use",
                                               "id": _call_id(conversation, number),
                                               "name": call.name, "input": {}}})
        await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "input_json_delta",
                                                     "partial_json": json.dumps(call.arguments)}})
        await send("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    await send("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if step.tool_calls else "end_turn",
                  "stop_sequence": None},
        "usage": {"output_tokens": output_tokens}})
    await send("message_stop", {"type": "message_stop"})
    await response.write_eof()
    return response


# -- OpenAI ---------------------------------------------------------------------------------
async def openai_chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    conversation = openai_conversation(body)
    choice = choose(request.app[SCRIPT_KEY], body, "openai", conversation)
    entry = _record(request, "openai", body, conversation, choice)
    step: Step = choice.step
    if step.error_status:
        return web.json_response({"error": {"message": step.error_message or "scripted failure",
                                            "type": "server_error"}}, status=step.error_status)
    response = await _sse(request)
    model = body.get("model", "scripted")
    base = {"id": f"chatcmpl-{_call_id(conversation, 0)}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
        await response.write(f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n"
                             .encode())

    first = True
    for piece in _pieces(step.text, step.chunks):
        await asyncio.sleep(step.delay)
        delta: dict[str, Any] = {"content": piece}
        if first:
            delta["role"] = "assistant"
            first = False
        await send([{"index": 0, "delta": delta, "finish_reason": None}])
    for number, call in enumerate(step.tool_calls):
        await asyncio.sleep(step.delay)
        await send([{"index": 0, "delta": {"tool_calls": [{
            "index": number, "id": _call_id(conversation, number), "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}]},
            "finish_reason": None}])
    await send([{"index": 0, "delta": {},
                 "finish_reason": "tool_calls" if step.tool_calls else "stop"}])
    prompt = sum(_tokens(m.text) for m in conversation)
    completion = _tokens(step.text) + 10 * len(step.tool_calls)
    entry["usage"] = {"input_tokens": prompt, "output_tokens": completion}
    await send([], usage={"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion})
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    return response


# -- controls -------------------------------------------------------------------------------
async def recorded(request: web.Request) -> web.Response:
    """The requests so far; with `?brief=1` without their system prompt and conversation
    (a long session's requests carry megabytes), but with the start of the latest user
    message (`latestUser`), which says which task a request was for."""
    entries = request.app[RECORD_KEY]
    if request.query.get("brief"):
        entries = [{**{k: v for k, v in e.items() if k not in ("system", "conversation")},
                    "latestUser": _latest_user(e["conversation"])[:BRIEF_TEXT]}
                   for e in entries]
    return web.json_response(entries)


def _latest_user(conversation: list[dict[str, Any]]) -> str:
    return next((str(m["text"]) for m in reversed(conversation)
                 if m["role"] == "user" and not m["toolResult"]), "")


async def forget(request: web.Request) -> web.Response:
    """Empty the record: a long run keeps only what it has not read yet (every request
    holds the whole conversation, so a record of a thousand tasks is a million messages)."""
    forgotten = len(request.app[RECORD_KEY])
    request.app[RECORD_KEY].clear()
    return web.json_response({"forgotten": forgotten})


async def replace_script(request: web.Request) -> web.Response:
    try:
        script = Script.parse(await request.text())
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": str(error)}, status=400)
    current = request.app[SCRIPT_KEY]
    current.tasks, current.summary = script.tasks, script.summary
    return web.json_response({"tasks": len(script.tasks)})


async def serve(script: Script, port: int) -> None:
    runner = web.AppRunner(build_app(script), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"{READY} http://127.0.0.1:{bound}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reef-scripted-model",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--script", type=Path, required=True, help="YAML script")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    args = parser.parse_args(argv)
    try:
        script = Script.parse(args.script.read_text())
    except (OSError, ValueError) as error:
        print(f"reef-scripted-model: cannot load {args.script}: {error}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(script, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
