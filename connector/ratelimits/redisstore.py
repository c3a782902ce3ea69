"""Shared limits in Redis: pyrate-limiter's RedisBucket (a sorted set per key, checked and added to by one
Lua script) for the windows, and a sorted set of leases per key for the in-flight places.

Checks of one call are admitted one after another: a call refused by its second check has used a place in
the first one's window (it waits a little more than it had to, never less).

The library's script counts a window's entries up to the caller's `now`; here it counts them all from the
window's start on. Processes read their clocks a moment before their scripts run, so an entry another
process stamped a millisecond "later" is already in Redis when ours runs: left uncounted, two processes
could both take the last place.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Sequence

import redis
from pyrate_limiter import RateItem, RedisBucket
from pyrate_limiter.buckets.redis_bucket import LuaScript

from connector.ratelimits import LEASE_SECONDS, Check, Verdict

LEAK_EVERY = 64  # admits of a key between two clean-ups of its expired entries
# A key lives twice its longest window (real time) after this process last renewed it, every quarter of that.

_LIBRARY_COUNT = "redis.call('ZCOUNT', bucket, window_start, now)"
if _LIBRARY_COUNT not in LuaScript.PUT_ITEM:  # pragma: no cover - a pyrate-limiter that changed its script
    raise ImportError("pyrate-limiter's Redis script changed: review connector/ratelimits/redisstore.py")
_PUT = LuaScript.PUT_ITEM.replace(_LIBRARY_COUNT, "redis.call('ZCOUNT', bucket, window_start, '+inf')")

_LEASE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < tonumber(ARGV[3]) then
    redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[4])
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2]) * 1000))
    return 1
end
return 0
"""


class _Keyed:
    """One key's bucket, the lock its verdict bookkeeping needs, and when to clean it next."""

    def __init__(self, bucket: RedisBucket, ttl_ms: int) -> None:
        self.bucket = bucket
        self.ttl_ms = ttl_ms
        self.lock = threading.Lock()
        self.admits = 0
        self.expiry_set = -math.inf  # time.monotonic() of this process's last PEXPIRE of the key


class RedisBackend:
    """Windows and leases in one Redis, every key under `prefix:`."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "ccm") -> None:
        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._lease = self.redis.register_script(_LEASE)
        self._put = ""  # loaded at the first call, so a Redis that is down fails a call, not the process
        self._buckets: dict[Check, _Keyed] = {}
        self._guard = threading.Lock()

    def _keyed(self, check: Check) -> _Keyed:
        with self._guard:
            found = self._buckets.get(check)
            if found is None:
                if not self._put:
                    self._put = str(self.redis.script_load(_PUT))
                bucket = RedisBucket(check.rates(), self.redis, f"{self.prefix}:w:{check.key}", self._put,
                                     check.algorithm())  # fmt: skip
                found = self._buckets[check] = _Keyed(bucket, math.ceil(check.longest * 2000))
            return found

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        stamp = int(now * 1000)
        for check in checks:
            keyed = self._keyed(check)
            item = RateItem(check.key, stamp)
            with keyed.lock:
                try:
                    admitted = keyed.bucket.put(item)
                except redis.exceptions.NoScriptError:  # Redis restarted or flushed its scripts
                    keyed.bucket.script_hash = self._put = str(self.redis.script_load(_PUT))
                    admitted = keyed.bucket.put(item)
                if not admitted:
                    waiting = keyed.bucket.waiting(item)
                    return Verdict(max(int(waiting), 1) / 1000, check.key)  # type: ignore[arg-type]
                keyed.admits += 1
                if keyed.admits % LEAK_EVERY == 0:
                    keyed.bucket.leak(stamp)
                if time.monotonic() - keyed.expiry_set > keyed.ttl_ms / 4000:  # an idle key goes away
                    self.redis.pexpire(keyed.bucket.bucket_key, keyed.ttl_ms)
                    keyed.expiry_set = time.monotonic()
        return Verdict()

    def lease(self, key: str, capacity: int) -> str | None:
        token = uuid.uuid4().hex
        taken = self._lease(
            keys=[f"{self.prefix}:f:{key}"], args=[time.time(), LEASE_SECONDS, capacity, token]
        )
        return token if taken else None

    def release(self, key: str, token: str) -> None:
        self.redis.zrem(f"{self.prefix}:f:{key}", token)

    def close(self) -> None:
        self.redis.close()
