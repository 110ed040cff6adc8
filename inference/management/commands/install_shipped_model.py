"""Register (after its sha256 check) and, where no version is active, activate the shipped ResNet-50.

    python manage.py install_shipped_model

Run by `make run` (after migrate) and by docker-compose's migrate service. Safe to run again: it
never registers the file twice and never replaces a version an admin activated.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inference.services import ModelRefused, model_install_shipped


class Command(BaseCommand):
    help = "Register and (if none is active) activate the ResNet-50 shipped under models/."

    def handle(self, *args, **options):
        try:
            version, done = model_install_shipped()
        except ModelRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{version.name} (sha256 {version.sha256[:12]}…): {done}"))
