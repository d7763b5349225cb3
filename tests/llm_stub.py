"""An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted replies.

Tests point a litellm model at it (`{"model": "openai/stub", "api_base": stub.base_url}`) so the
real litellm HTTP path runs — request building, response parsing, errors — without the internet.

    with LLMStub([Reply(content="```sql\\nSELECT 1\\n```"), Reply(status=429), Reply(delay=5)]) as stub:
        ...
        stub.requests  # every request body received, in order

Replies are served in order; the last one repeats when the script runs out. A reply may also be a
callable taking the request body and returning a Reply (e.g. to answer based on the prompt).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int = 120
    completion_tokens: int = 30
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)


Script = list[Reply | Callable[[dict[str, Any]], Reply]]


class LLMStub:
    def __init__(self, script: Script, model: str = "stub-model") -> None:
        self.script = list(script)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> LLMStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            index = min(len(self.requests) - 1, len(self.script) - 1)
            reply = self.script[index]
        return reply(body) if callable(reply) else reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = stub._next(body)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    payload = {
                        "error": {
                            "message": reply.error or f"stub error {reply.status}",
                            "type": "stub_error",
                            "code": reply.status,
                        }
                    }
                else:
                    payload = {
                        "id": f"chatcmpl-stub-{len(stub.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", stub.model),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.content},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                        },
                    }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        return Handler


def sql_reply(sql: str, **kwargs: Any) -> Reply:
    return Reply(content=f"Here is the query:\n```sql\n{sql}\n```", **kwargs)
