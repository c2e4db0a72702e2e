"""The Celery application. Configuration lives in settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("paperboy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task_later(name: str, *args: object, countdown: float | None = None) -> None:
    """Hand work to the workers by the task's name (``newsletter.tasks.<name>``), so a
    module that asks for work never imports the module that does it: ``newsletter.tasks``
    imports the services, never the other way round. Runs at once when tasks are eager
    (no broker: the demo and the tests)."""
    key = f"newsletter.tasks.{name}"
    if key not in app.tasks:  # a process that never imported the tasks (a command)
        app.loader.import_default_modules()
    task = app.tasks[key]
    if countdown is None:
        task.apply_async(args=args)
    else:
        task.apply_async(args=args, countdown=countdown)


def tasks_eager() -> bool:
    return bool(app.conf.task_always_eager)
