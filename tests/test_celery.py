from __future__ import annotations

from typing import Any

from django.conf import settings

from config.celery import app


def test_every_beat_entry_points_at_a_real_task() -> None:
    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, f"beat entry {name} names no task"
        assert entry["options"]["expires"] > 0, f"beat entry {name} has no expires"


def test_celery_is_configured_for_safe_delivery() -> None:
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
