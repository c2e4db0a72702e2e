"""Django's Redis cache, with one redis-py client per connection pool.

Django builds a new ``redis.Redis`` object for every cache call, and building one copies
redis-py's table of response callbacks: on a loopback connection that costs more than
the call itself. A client holds no connection of its own (each command borrows one from
the pool) and is safe to share between threads, so one per pool serves every call.

``incr_until_over`` moves several counters in one round trip (a Lua script): a public
form's post counts against its client's network and, unless that is over its limit,
its address (newsletter/abuse.py).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


# KEYS: the counters; ARGV: timeout and limit of each, in turn.
INCR_UNTIL_OVER = """
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = 0 end
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[2 * i - 1])
    counts[i] = count
    if count > tonumber(ARGV[2 * i]) then break end
end
return counts
"""


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = PooledRedisCacheClient
        self._scripts: dict[int, Any] = {}

    def incr_until_over(self, counters: list[tuple[str, int, int]]) -> list[int]:
        """For each (key, timeout, limit) counter in order: add one (a missing counter
        starts at 0) and set its expiry to ``timeout`` seconds; after the first that is
        over its limit, leave the rest alone (0 for them). One round trip for all."""
        keys = [self.make_and_validate_key(key) for key, _, _ in counters]
        args = [value for _, timeout, limit in counters for value in (timeout, limit)]
        client = self._cache.get_client(write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(INCR_UNTIL_OVER)
        return [int(count) for count in script(keys=keys, args=args)]
