import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # tasks.py of every installed app: scans, alerts


@worker_process_init.connect
def share_the_cpus(**_kwargs) -> None:
    """Each analysis process of a worker node takes its share of the node's CPUs (inference/runtime.py)."""
    from inference.runtime import share_the_cpus

    share_the_cpus()
