"""Django's Redis cache, with one redis-py client per connection pool.

Django builds a new ``redis.Redis`` object for every cache call, and building one copies
redis-py's table of response callbacks: on a loopback connection that costs more than
the call itself. A client holds no connection of its own (each command borrows one from
the pool) and is safe to share between threads, so one per pool serves every call.

``incr_many`` moves several counters in one round trip: a public form's post counts
against its client's network and its address at once (newsletter/abuse.py).
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


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = PooledRedisCacheClient

    def incr_many(self, counters: list[tuple[str, int]]) -> list[int]:
        """Add one to each (key, timeout) counter, created at 0 if missing, and set its
        expiry to ``timeout`` seconds: all in one round trip. The new values."""
        client = self._cache.get_client(write=True)
        with client.pipeline(transaction=False) as pipe:
            for key, timeout in counters:
                name = self.make_and_validate_key(key)
                pipe.incr(name)
                pipe.expire(name, timeout)
            return [int(value) for value in pipe.execute()[::2]]
