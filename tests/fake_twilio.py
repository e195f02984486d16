"""A stand-in for Twilio's REST API on loopback: records every request the twilio
library sends (POST, and DELETE of a conference participant), answers like the API does,
so tests assert on the exact requests.

``fault`` makes it misbehave as the real API can: ``"refuse"`` (the connection is closed
unanswered, as a refused or reset connection), ``"hang"`` (no answer for ``hang_s``),
or an HTTP status such as 500 or 404 with Twilio's JSON error body."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    authorization: str
    body: str = ""  # as sent (the form keeps each key's first value only)


@dataclass
class FakeTwilioAPI:
    requests: list[Recorded] = field(default_factory=list)
    fault: str | int | None = None
    hang_s: float = 30.0
    #: Called with each request the API accepted (tests play Twilio's side with it).
    on_accept: Callable[[Recorded], None] | None = None
    refused: int = 0

    def __enter__(self) -> "FakeTwilioAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.answer("POST")

            def do_DELETE(self) -> None:  # noqa: N802 (a participant taken out of a room)
                self.answer("DELETE")

            def answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                fault = api.fault
                if fault == "refuse":
                    api.refused += 1
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "hang":
                    time.sleep(api.hang_s)
                    return
                if isinstance(fault, int):
                    payload = json.dumps({"code": 20000 + fault, "message": "fault injected",
                                          "status": fault})
                    self.send_response(fault)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                    return
                recorded = Recorded(method, self.path, form,
                                    self.headers.get("Authorization", ""), body)
                api.requests.append(recorded)
                if method == "DELETE":
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    if api.on_accept is not None:
                        api.on_accept(recorded)
                    return
                sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
                if not sid.startswith("CA"):
                    sid = "CA" + secrets.token_hex(16)
                payload = json.dumps({"sid": sid, "status": "queued",
                                      "to": form.get("To"), "from": form.get("From")})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())
                if api.on_accept is not None:
                    api.on_accept(recorded)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a hanging request must not hold the test
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
