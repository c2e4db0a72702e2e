"""deploy/: every process the compose file starts is a real command of the project."""

from __future__ import annotations

import re
import shlex
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
APP_SERVICES = ["migrate", "web", "worker", "beat"]


def exec_line(script: Path) -> list[str]:
    """The command a start script finally execs, with line continuations joined."""
    text = script.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("exec ")]
    assert len(lines) == 1, f"{script} must end in exactly one exec"
    return shlex.split(lines[0])[1:]


def test_compose_has_every_process() -> None:
    assert set(COMPOSE["services"]) == {"postgres", "redis", *APP_SERVICES}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_process_runs_a_strict_start_script(service: str) -> None:
    command = COMPOSE["services"][service]["command"]
    script = ROOT / command[0]
    assert script.is_file(), f"{service}: {command[0]} does not exist"
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_start_script_execs_a_real_command(service: str) -> None:
    argv = exec_line(ROOT / COMPOSE["services"][service]["command"][0])
    program = argv[0]
    if program == "gunicorn":
        module, attribute = argv[1].split(":")
        assert callable(getattr(import_module(module), attribute))
    elif program == "celery":
        app = import_module(argv[argv.index("--app") + 1]).celery_app
        assert argv[argv.index("--app") + 2] in ("worker", "beat")
        assert app.main == "paperboy"
    elif program == "python":
        assert argv[1] == "manage.py" and argv[2] in get_commands()
    else:
        pytest.fail(f"{service} execs an unknown program {program}")


def test_the_image_runs_as_a_non_root_user_on_a_slim_base() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)


def test_every_variable_the_code_reads_is_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(), re.M)
    )
    sources = [ROOT / "config" / "settings.py", *sorted((DEPLOY / "bin").iterdir())]
    read = set()
    for path in sources:
        text = path.read_text()
        read |= set(re.findall(r'env(?:str|bool|int|list|raw)\(\s*"([A-Z0-9_]+)"', text))
        read |= set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    read |= set(
        re.findall(r'is_set\("([A-Z0-9_]+)"', (ROOT / "newsletter" / "checks.py").read_text())
    )
    read.discard("TEST_DATABASE_URL")  # the test suite's own, documented in the README
    assert read and read <= documented, f"undocumented: {sorted(read - documented)}"
