"""Helpers shared by the analytics tests: a local webhook receiver and a webhook made through the API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A local HTTP endpoint: records every request; answers from per-path queues of status codes."""

    def __init__(self):
        self.requests: list[dict] = []
        self.codes: dict[str, list[int]] = {}
        self.token_count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                if self.path == "/token":
                    receiver.token_count += 1
                    payload = json.dumps({"access_token": f"tok-{receiver.token_count}", "expires_in": 3600}).encode()
                    return self._answer(200, payload, "application/json")
                if (
                    self.path.startswith("/oauth")
                    and self.headers.get("Authorization") != f"Bearer tok-{receiver.token_count}"
                ):
                    return self._answer(401, b"expired")
                queue = receiver.codes.get(self.path) or [200]
                code = queue.pop(0) if len(queue) > 1 else queue[0]
                self._answer(code, b"OK")

            def _answer(self, code, payload, ctype="text/plain"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, path):
        return [r for r in self.requests if r["path"] == path]

    def batches(self, path):
        return [json.loads(r["body"]) for r in self.posts(path) if r["headers"].get("X-MessageSystems-Batch-ID")]


def create_webhook(api, receiver, path="/hook", **fields):
    body = {"name": "Hook", "target": receiver.url + path, "events": ["open", "click", "delivery"], **fields}
    response = api.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]["id"]
