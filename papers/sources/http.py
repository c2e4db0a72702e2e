"""A polite HTTP client for the sources: timeouts, a minimum interval between requests,
and retries with exponential backoff and jitter on 429 and 5xx that honour the
server's Retry-After and RateLimit headers."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from papers.sources import SourceError

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
USER_AGENT = "Paperboy/0.1 (self-hosted paper digest; +https://github.com/)"
_RESET = re.compile(r"(?:^|[;,\s])(?:t|reset)=(\d+)")


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or an HTTP date), else
    the reset time of an exhausted RateLimit header (``"api";r=0;t=42`` or
    ``limit=500, remaining=0, reset=42``)."""
    value = response.headers.get("Retry-After")
    if value:
        if value.strip().isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - (now if now is not None else time.time()))
    ratelimit = response.headers.get("RateLimit") or response.headers.get("RateLimit-Reset")
    if ratelimit:
        if ratelimit.strip().isdigit():
            return float(ratelimit)
        match = _RESET.search(ratelimit)
        if match:
            return float(match.group(1))
    return None


class PoliteClient:
    def __init__(
        self,
        *,
        name: str,
        min_interval: float,
        timeout: float = 20.0,
        attempts: int = 5,
        backoff: float = 2.0,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.min_interval = min_interval
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self._last = 0.0
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _pace(self) -> None:
        wait = self._last + self.min_interval - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last = time.monotonic()

    def _backoff(self, attempt: int, asked: float | None) -> float:
        jittered = random.uniform(0, self.backoff * 2**attempt)
        return min(self.max_wait, max(asked or 0.0, jittered))

    def get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """A 2xx response (any other status passes through for the caller to judge),
        or SourceError once retries are spent."""
        problem = ""
        for attempt in range(self.attempts):
            self._pace()
            try:
                response = self.http.get(url, params=params)
            except httpx.TimeoutException as exc:
                problem = f"{self.name} timed out ({type(exc).__name__})"
                asked = None
            except httpx.TransportError as exc:
                problem = f"{self.name} request failed: {exc!r}"
                asked = None
            else:
                if response.status_code not in RETRY_STATUS:
                    return response
                problem = f"{self.name} answered HTTP {response.status_code}"
                asked = retry_after(response)
            if attempt + 1 < self.attempts:
                wait = self._backoff(attempt, asked)
                log.info("%s; retrying in %.1f s", problem, wait)
                self.sleep(wait)
        raise SourceError(f"{problem}, after {self.attempts} attempts")
