"""Print a new VAPID key pair for Web Push, as lines for the .env file."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand
from py_vapid import Vapid


class Command(BaseCommand):
    help = "Print a VAPID key pair (VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY) for Web Push notifications."

    def handle(self, *args, **options):
        vapid = Vapid()
        vapid.generate_keys()
        self.stdout.write(f"VAPID_PRIVATE_KEY={vapid_private_key(vapid)}")
        self.stdout.write(f"VAPID_PUBLIC_KEY={vapid_public_key(vapid)}")


def vapid_private_key(vapid: Vapid) -> str:
    """The private key as pywebpush takes it: base64url of the raw 32-byte scalar."""
    number = vapid.private_key.private_numbers().private_value
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).decode().rstrip("=")


def vapid_public_key(vapid: Vapid) -> str:
    """The public key as browsers take it (applicationServerKey): base64url of the uncompressed point."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
