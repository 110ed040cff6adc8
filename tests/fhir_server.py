"""A FHIR server on localhost for the push tests (scans/fhir_push.py): it records every request it gets and
keeps the resources of the transactions it accepts, honouring conditional creates (`ifNoneExist` on an
identifier) as a real server does, so a bundle sent twice can be seen to create nothing twice.

It can misbehave on purpose: `fail_first=N` answers 503 to the first N transactions without storing
anything (a server that is down, then recovers); `lose_answer_first=N` stores the first N and then
answers 500 (a server that committed but whose answer was lost); `refuse=True` answers 422 to all;
`statuses_first=[401, 503...]` answers the first requests with those statuses, storing nothing; and
`hang_first=N` records the first N requests and holds them unanswered until the server is closed (a
send in flight when its worker is killed).
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import unquote


class RecordingFhirServer:
    def __init__(
        self,
        *,
        fail_first: int = 0,
        lose_answer_first: int = 0,
        refuse: bool = False,
        statuses_first: list[int] = (),
        hang_first: int = 0,
    ):
        self.fail_first = fail_first
        self.statuses_first = list(statuses_first)
        self.hang_first = hang_first
        self.closing = threading.Event()
        self.lose_answer_first = lose_answer_first
        self.refuse = refuse
        self.received: list[SimpleNamespace] = []  # every request: path, headers, body (parsed JSON)
        self.stored: dict[str, list[dict]] = {}  # resource type -> resources kept
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if server.hold(self.path, dict(self.headers.items()), raw):
                    server.closing.wait()
                    return
                with server.lock:
                    status, answer = server.handle(self.path, dict(self.headers.items()), raw)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/fhir"

    def __enter__(self) -> RecordingFhirServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    # --- what a server does with a transaction -----------------------------------------------

    def _record(self, path: str, headers: dict, raw: bytes) -> int:
        self.received.append(
            SimpleNamespace(path=path, headers={k.lower(): v for k, v in headers.items()}, body=json.loads(raw))
        )
        return len(self.received)

    def hold(self, path: str, headers: dict, raw: bytes) -> bool:
        """Whether this request is one of the first hang_first: recorded, and never answered."""
        with self.lock:
            if len(self.received) >= self.hang_first:
                return False
            self._record(path, headers, raw)
            return True

    def handle(self, path: str, headers: dict, raw: bytes) -> tuple[int, dict]:
        number = self._record(path, headers, raw) - self.hang_first  # the held ones were never answered
        bundle = self.received[-1].body
        if number <= len(self.statuses_first):
            return self.statuses_first[number - 1], _outcome("error", "security", "on purpose")
        number -= len(self.statuses_first)
        if self.refuse:
            return 422, _outcome("error", "processing", "refused on purpose")
        if number <= self.fail_first:
            return 503, _outcome("error", "transient", "down on purpose")
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return 400, _outcome("error", "invalid", "not a transaction Bundle")
        entries = []
        for entry in bundle.get("entry", []):
            resource, request = entry["resource"], entry["request"]
            existing = self._find(request["url"], request.get("ifNoneExist", ""))
            if existing is None:
                stored = {**resource, "id": uuid.uuid4().hex}
                self.stored.setdefault(request["url"], []).append(stored)
                entries.append({"response": {"status": "201 Created", "location": f"{request['url']}/{stored['id']}"}})
            else:
                entries.append({"response": {"status": "200 OK", "location": f"{request['url']}/{existing['id']}"}})
        if number <= self.fail_first + self.lose_answer_first:
            return 500, _outcome("error", "exception", "stored, then lost the answer on purpose")
        return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    def _find(self, resource_type: str, condition: str) -> dict | None:
        if not condition:
            return None
        name, _, value = condition.partition("=")
        assert name == "identifier", condition
        system, _, code = (unquote(part) for part in value.partition("|"))
        for resource in self.stored.get(resource_type, []):
            if any(i.get("system") == system and i.get("value") == code for i in resource.get("identifier", [])):
                return resource
        return None

    def count(self, resource_type: str) -> int:
        return len(self.stored.get(resource_type, []))


def _outcome(severity: str, code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": text}]}
