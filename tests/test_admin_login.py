"""The admin login slows down password guessing: failed attempts are counted per client
IP and per username, and past PAPERBOY_ADMIN_LOGIN_RATE they get a 429."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.test_settings import manage

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(settings: Any) -> User:
    settings.PAPERBOY_ADMIN_LOGIN_RATE = "3/15m"
    return User.objects.create_user("operator", "op@example.org", PASSWORD, is_staff=True)


def attempt(username: str, password: str, ip: str = "203.0.113.7") -> int:
    client = Client(REMOTE_ADDR=ip)
    data = {"username": username, "password": password, "next": "/admin/"}
    return client.post(reverse("admin:login"), data).status_code


def test_a_good_login_gets_in(operator: User) -> None:
    assert attempt("operator", PASSWORD) == 302


def test_too_many_failures_for_a_username_get_429_even_with_the_right_password(
    operator: User,
) -> None:
    ips = [f"198.51.100.{n}" for n in range(1, 5)]
    assert [attempt("operator", "guess", ip) for ip in ips[:3]] == [200, 200, 200]
    client = Client(REMOTE_ADDR=ips[3])
    data = {"username": "Operator", "password": PASSWORD}  # the same name, other case
    response = client.post(reverse("admin:login"), data)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed logins" in html
    wait = re.search(r"Try again in (\d+) minutes?\.", html)
    assert wait is not None and 1 <= int(wait.group(1)) <= 15
    assert "_auth_user_id" not in client.session  # the password was not even checked
    assert attempt("someone-else", "guess", ips[3]) == 200  # other names are not blocked


def test_the_username_limit_holds_for_every_spelling_of_the_name(operator: User) -> None:
    """Fullwidth letters log in as the plain name (NFKC), so they count as it too."""
    assert [attempt("operator", "guess", f"198.51.100.{n}") for n in range(3)] == [200] * 3
    assert attempt("ｏｐｅｒａｔｏｒ", PASSWORD, "192.0.2.9") == 429
    assert attempt("ＯＰＥＲＡＴＯＲ", PASSWORD, "192.0.2.10") == 429
    assert attempt("operator\N{ZERO WIDTH SPACE}", "guess", "192.0.2.11") == 200  # another name


def test_fullwidth_failures_count_against_the_plain_name(operator: User) -> None:
    assert [attempt("ｏｐｅｒａｔｏｒ", "guess", f"198.51.100.{n}") for n in range(3)] == [200] * 3
    assert attempt("operator", PASSWORD, "192.0.2.9") == 429


def test_too_many_failures_from_one_address_get_429_for_every_name(operator: User) -> None:
    assert [attempt(f"user{n}", "guess") for n in range(3)] == [200, 200, 200]
    assert attempt("operator", PASSWORD) == 429
    assert attempt("operator", PASSWORD, ip="192.0.2.1") == 302  # from elsewhere


def test_the_limit_lifts_when_its_window_ends(operator: User) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(3):
            attempt("operator", "guess")
        assert attempt("operator", PASSWORD) == 429
        clock.shift(timedelta(minutes=16))
        assert attempt("operator", PASSWORD) == 302


def test_good_logins_and_the_login_page_do_not_count(operator: User) -> None:
    for _ in range(5):
        assert attempt("operator", PASSWORD) == 302
        assert Client().get(reverse("admin:login")).status_code == 200
    assert attempt("operator", "guess") == 200


def test_the_limit_is_ten_every_fifteen_minutes_by_default() -> None:
    from django.conf import settings

    assert settings.PAPERBOY_ADMIN_LOGIN_RATE == "10/15m"


@pytest.mark.parametrize(
    "name",
    ["PAPERBOY_ADMIN_LOGIN_RATE", "PAPERBOY_FORM_RATE_PER_IP", "PAPERBOY_FORM_RATE_PER_ADDRESS"],
)
def test_a_malformed_limit_stops_the_service_with_a_clear_message(name: str) -> None:
    result = manage("check", env={name: "ten a minute"})
    assert result.returncode != 0
    assert f"{name} must be COUNT/PERIOD such as 10/15m" in result.stderr
