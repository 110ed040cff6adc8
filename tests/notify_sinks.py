"""Where the portal's calls land in tests (alerts/notify.py): a real SMTP server (aiosmtpd) and a Web
Push service on localhost, and devices whose keys decrypt what the push service received."""

from __future__ import annotations

import base64
import json
import os
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stack.embedded import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Mailbox:
    """An SMTP server on localhost that keeps every message: (recipients, email.message.Message)."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.port = self.controller.port

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class _Server(ThreadingHTTPServer):
    # A push service takes many connections at once: a call opens one per device, all together
    # (alerts/notify.py), and the default backlog of 5 resets the rest on a busy machine.
    request_queue_size = 128
    daemon_threads = True


class PushService:
    """A push service on localhost: it keeps what it is sent, answers 410 Gone for /gone/ endpoints,
    307 to /landed/ for /redirect/ ones (a client that follows it shows up there), and never answers
    /hang/ ones (it holds each such request open until it is closed itself; `hanging` counts those
    held now, `hung` all that ever were)."""

    def __init__(self):
        from py_vapid import Vapid

        from alerts.management.commands.generate_vapid_keys import vapid_private_key, vapid_public_key

        vapid = Vapid()
        vapid.generate_keys()
        self.private_key, self.public_key = vapid_private_key(vapid), vapid_public_key(vapid)
        self.received = []
        self.hanging = self.hung = 0
        self.closing, self.counting = threading.Event(), threading.Lock()
        received, service = self.received, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.startswith("/hang/"):
                    with service.counting:
                        service.hanging += 1
                        service.hung += 1
                    service.closing.wait()
                    with service.counting:
                        service.hanging -= 1
                    return
                received.append(
                    SimpleNamespace(
                        path=self.path, body=body, headers={key.lower(): value for key, value in self.headers.items()}
                    )
                )
                if self.path.startswith("/redirect/"):
                    self.send_response(307)
                    self.send_header("Location", "/landed" + self.path)
                else:
                    self.send_response(410 if self.path.startswith("/gone/") else 201)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> PushService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.server.shutdown()


class Device:
    """A browser's push subscription: its own key pair and auth secret, as a real one has."""

    def __init__(self, user, push_service: PushService, name: str):
        from alerts.models import PushSubscription

        self.private_key = ec.generate_private_key(ec.SECP256R1())
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.auth = os.urandom(16)
        self.path = f"/{name}/{b64url(os.urandom(6))}"
        self.subscription = PushSubscription.objects.create(
            user=user, endpoint=push_service.url + self.path, p256dh=b64url(public), auth=b64url(self.auth)
        )
        self.push_service = push_service

    def messages(self) -> list[dict]:
        return [
            json.loads(
                http_ece.decrypt(request.body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm")
            )
            for request in self.push_service.received
            if request.path == self.path
        ]
