"""One pace for every worker and process: the send rate limit and throttling pauses.

The shared cache holds one moment, the next at which a message may go out. Each send
takes that moment and moves it on by one interval (1 / PAPERBOY_SEND_RATE seconds), in
one atomic step (a Lua script on Redis, timed by Redis's own clock, so workers on hosts
whose clocks disagree still share one pace); the sender sleeps until its moment. The
messages are spaced evenly, with no burst at the start of each second, so the rate holds
over any stretch of time, not only on average.

A provider's throttling answer pushes the moment into the future for everyone. The
answers of one episode share a pause (PAPERBOY_SEND_THROTTLE_PAUSE); a throttle met
again once it is over doubles it (at most 30 seconds), and a minute without one starts
again from the first pause. With no rate limit a
process looks for a pause at most four times a second, so an unlimited send does not
pay a round trip per message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

NEXT_KEY = "send-pace:next"
LEVEL_KEY = "send-pace:throttles"
MAX_PAUSE = 30.0
THROTTLE_MEMORY = 60  # seconds without a throttle before the pause starts small again
PAUSE_CHECK_EVERY = 0.25

# KEYS[1]: the next free moment, in microseconds of Redis's clock. ARGV: the interval
# to move it on by and the least moment to push it to (microseconds from now), its
# lifetime (ms). Returns the microseconds the caller waits.
TAKE_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local moment = tonumber(redis.call('GET', KEYS[1]) or '0')
local least = now + tonumber(ARGV[2])
if moment < least then moment = least end
local interval = tonumber(ARGV[1])
if interval > 0 or tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], string.format('%d', moment + interval), 'PX', ARGV[3])
end
return moment - now
"""

_lock = threading.Lock()
_scripts: dict[int, object] = {}
_last_check = [0.0]
_local_next = [0.0]
log = logging.getLogger(__name__)


def _take(interval: float, push: float = 0.0) -> float:
    """Take the next moment (moving it on by ``interval``, and at least ``push`` seconds
    from now); returns the seconds until it. While Redis cannot be reached, each
    process keeps its own pace (the rate holds per process, not across them) and the
    send goes on: the database and the mail server may well be up."""
    lifetime_ms = int((max(interval, push) + MAX_PAUSE + 5) * 1000)
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        try:
            client = backend._cache.get_client(write=True)
            script = _scripts.get(id(client))
            if script is None:
                script = _scripts[id(client)] = client.register_script(TAKE_SLOT)
            key = backend.make_and_validate_key(NEXT_KEY)
            args = [int(interval * 1e6), int(push * 1e6), lifetime_ms]
            return max(0.0, int(script(keys=[key], args=args)) / 1e6)  # type: ignore[operator]
        except (RedisError, OSError) as exc:
            log.warning("send pacing: Redis cannot be reached, pacing this process alone: %r", exc)
    with _lock:  # one process's own pace (no Redis, or Redis is down), under a lock
        now = time.time()
        moment = max(_local_next[0], now + push)
        if interval > 0 or push > 0:
            _local_next[0] = moment + interval
        return max(0.0, moment - now)


def send_slot(*, rate: float | None = None, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until one more message may go out, so that all workers together send at
    most ``rate`` messages a second (PAPERBOY_SEND_RATE; 0: no limit) and every one
    waits out a provider's throttling pause. Returns the seconds waited."""
    rate = settings.PAPERBOY_SEND_RATE if rate is None else rate
    if rate <= 0:
        now = time.monotonic()
        if now - _last_check[0] < PAUSE_CHECK_EVERY:
            return 0.0
        _last_check[0] = now
        wait = _take(0.0)
    else:
        wait = _take(1.0 / rate)
    if wait > 0:
        sleep(wait)
    return wait


def throttle_note() -> float:
    """A provider asked us to slow down: every worker pauses. The answers of one
    episode (every process meets the throttle at once) share one pause; a throttle
    that comes back after the pause is over doubles it. Returns the pause left."""
    try:
        level, until = cache.get(LEVEL_KEY) or (0, 0.0)
    except (RedisError, OSError):
        level, until = 0, 0.0
    now = time.time()
    if now < until:
        return float(until - now)
    pause = min(MAX_PAUSE, settings.PAPERBOY_SEND_THROTTLE_PAUSE * 2**level)
    try:
        cache.set(LEVEL_KEY, (level + 1, now + pause), timeout=int(THROTTLE_MEMORY + pause))
    except (RedisError, OSError):
        log.warning("send pacing: Redis cannot be reached to share a throttle pause")
    _take(0.0, push=pause)
    _last_check[0] = 0.0  # this process looks at once
    return float(pause)
