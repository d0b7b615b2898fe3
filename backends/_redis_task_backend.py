"""``RedisTaskBackend``: task records as Redis hashes, compare-and-set in one Lua script.

Key layout (``P`` is ``{prefix}``, braces included):

- ``P:t:<task_id>``: the record, a hash: ``v`` version, ``s`` status, ``o`` owner, ``m`` the record's
  member in its owner's index, ``d`` the other fields (msgpack). A record with a ttl carries a
  ``PEXPIREAT`` at ``created_at + ttl``, so Redis itself stops returning it.
- ``P:to:<owner>``: the owner's index, a sorted set with every score 0 whose members sort
  lexicographically as the listing order: 8 bytes of ``created_at`` inverted (newest first) then the
  task id (ties ascending). A page is one ``ZRANGEBYLEX`` from the cursor; no ``KEYS``/``SCAN``.
- ``P:tx``: ids of records with a ttl, scored by expiry (ms); ``P:ti``: for those ids, where their
  owner-index entry is. Together they let ``expire()`` and ``delete()`` clean the index entries of
  a record Redis has already expired (whose hash, with its owner, is gone).

``create``, ``update``, ``delete``, ``list`` and ``expire`` are each one Lua script, so each is one
round trip and atomic: two nodes updating the same version cannot both win, because the script
checks the version, the immutable fields and the status transition and writes in one step.
``get`` is one ``HMGET``.

What ``expire()`` means here: Redis deletes expired records itself. ``expire()`` removes the index
entries those records left behind and returns how many records that was, i.e. the number of records
that expired since the last ``expire()`` (the count the memory and SQLite backends return).

Times: ``created_at``/``ttl`` are the caller's wall-clock seconds and Redis compares them with its own
clock, so the nodes and the Redis server must keep their clocks in sync (NTP). Expiry has millisecond
resolution and rounds down: a record is never returned at or after its ``expires_at``.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import math
import struct
from typing import Any, Final, Self, cast

import attrs
import msgpack

from ._errors import InvalidTransition, TaskExists, TaskNotFound, VersionConflict
from ._redis_connection import DEFAULT_REQUEST_TIMEOUT, RedisConnection, check_prefix
from ._task_record import TaskPage, TaskRecord, TaskStatus, check_transition

_EXPIRE_BATCH: Final = 500
_CURSOR_TAG: Final = "r1."
_MASK64: Final = (1 << 64) - 1


def _lua_allowed_table() -> str:
    """The transition rule as a Lua set of ``'old>new'``, derived from ``check_transition``."""
    pairs = []
    for old in TaskStatus:
        for new in TaskStatus:
            try:
                check_transition("", old, new)
            except InvalidTransition:
                continue
            pairs.append(f"['{old.value}>{new.value}']=true")
    return "local ALLOWED = {" + ", ".join(pairs) + "}\n"


_NOW_MS: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# forget(p, tx, ti, id): remove the index entries of a record that is already gone; 1 if there were any.
# A locator in ti is "<owner byte length>:<owner><member>".
_FORGET: Final = """
local function forget(p, tx, ti, id)
  local loc = redis.call('HGET', ti, id)
  if not loc then return 0 end
  local colon = string.find(loc, ':', 1, true)
  local n = tonumber(string.sub(loc, 1, colon - 1))
  redis.call('ZREM', p .. ':to:' .. string.sub(loc, colon + 1, colon + n), string.sub(loc, colon + n + 1))
  redis.call('HDEL', ti, id)
  redis.call('ZREM', tx, id)
  return 1
end
"""

# KEYS: record, tx, ti, owner index. ARGV: P, id, status, owner, member, data, expiry ms or '', locator.
_CREATE: Final = (
    _FORGET
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
forget(ARGV[1], KEYS[2], KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], 'v', 1, 's', ARGV[3], 'o', ARGV[4], 'm', ARGV[5], 'd', ARGV[6])
redis.call('ZADD', KEYS[4], 0, ARGV[5])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[8])
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[7])
end
return 1
"""
)

# KEYS: record, tx, ti. ARGV: P, id, expected version, status, owner, member, data, expiry or '', locator.
_UPDATE: Final = (
    _lua_allowed_table()
    + """
local cur = redis.call('HMGET', KEYS[1], 'v', 's', 'o', 'm')
if not cur[1] then return {'missing'} end
if cur[1] ~= ARGV[3] then return {'conflict', cur[1]} end
if cur[3] ~= ARGV[5] or cur[4] ~= ARGV[6] then return {'immutable'} end
if not ALLOWED[cur[2] .. '>' .. ARGV[4]] then return {'transition', cur[2]} end
local v = tonumber(cur[1]) + 1
redis.call('HSET', KEYS[1], 'v', v, 's', ARGV[4], 'd', ARGV[7])
if ARGV[8] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
else
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[8])
end
return {'ok', v}
"""
)

# KEYS: record, tx, ti. ARGV: P, id.
_DELETE: Final = (
    _FORGET
    + """
local cur = redis.call('HMGET', KEYS[1], 'o', 'm')
if not cur[1] then
  forget(ARGV[1], KEYS[2], KEYS[3], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. ':to:' .. cur[1], cur[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""
)

# KEYS: owner index. ARGV: P, owner, lex start ('-' or '(' .. member), limit.
# Returns {{v, s, id, d, ...}, more}; skips entries whose record expired or was recreated elsewhere.
_LIST: Final = """
local need = tonumber(ARGV[4])
local out = {}
local found = 0
local bound = ARGV[3]
while true do
  local ms = redis.call('ZRANGEBYLEX', KEYS[1], bound, '+', 'LIMIT', 0, need + 1)
  for _, m in ipairs(ms) do
    local id = string.sub(m, 9)
    local r = redis.call('HMGET', ARGV[1] .. ':t:' .. id, 'v', 's', 'o', 'm', 'd')
    if r[1] and r[3] == ARGV[2] and r[4] == m then
      if found == need then return {out, 1} end
      found = found + 1
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      out[#out + 1] = id
      out[#out + 1] = r[5]
    end
  end
  if #ms < need + 1 then return {out, 0} end
  bound = '(' .. ms[#ms]
end
"""

# KEYS: tx, ti. ARGV: P, batch size. Returns {records cleaned, ids visited}.
_EXPIRE: Final = (
    _FORGET
    + _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, id in ipairs(due) do
  if redis.call('EXISTS', ARGV[1] .. ':t:' .. id) == 0 then
    removed = removed + forget(ARGV[1], KEYS[1], KEYS[2], id)
  end
end
return {removed, #due}
"""
)


def _order_key(created_at: float) -> bytes:
    """8 bytes whose byte order is ``created_at`` descending (IEEE 754 bits made sortable, inverted)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", created_at + 0.0))  # + 0.0 folds -0.0 into 0.0
    bits = (bits ^ _MASK64) if bits >> 63 else (bits | (1 << 63))
    return struct.pack(">Q", bits ^ _MASK64)


def _member(record: TaskRecord) -> bytes:
    return _order_key(record.created_at) + record.task_id.encode()


def _expiry_ms(record: TaskRecord) -> str:
    """``PEXPIREAT`` argument: live while Redis's ms clock <= it, i.e. strictly before ``expires_at``."""
    expires_at = record.expires_at
    if expires_at is None or math.isinf(expires_at) or expires_at > 1e11:
        return ""  # no ttl, or one so long Redis cannot represent it: never expires
    return str(math.floor(expires_at * 1000) - 1)


def _locator(record: TaskRecord, member: bytes) -> bytes:
    owner = record.owner.encode()
    return str(len(owner)).encode() + b":" + owner + member


def _pack(record: TaskRecord) -> bytes:
    data = [
        record.status_message,
        record.progress,
        record.total,
        record.result,
        record.error,
        record.input_request,
        record.created_at,
        record.updated_at,
        record.ttl,
        record.poll_interval,
    ]
    return cast(bytes, msgpack.packb(data, use_bin_type=True))


def _unpack(task_id: str, owner: str, status: bytes, version: bytes | int, data: bytes) -> TaskRecord:
    fields: list[Any] = msgpack.unpackb(data, raw=False)
    return TaskRecord(
        task_id=task_id,
        owner=owner,
        status=TaskStatus(status.decode()),
        status_message=fields[0],
        progress=fields[1],
        total=fields[2],
        result=fields[3],
        error=fields[4],
        input_request=fields[5],
        created_at=fields[6],
        updated_at=fields[7],
        ttl=fields[8],
        poll_interval=fields[9],
        version=int(version),
    )


def _encode_cursor(member: bytes) -> str:
    return _CURSOR_TAG + base64.urlsafe_b64encode(member).decode("ascii")


def _decode_cursor(cursor: str) -> bytes:
    try:
        if not cursor.startswith(_CURSOR_TAG):
            raise ValueError("tag")  # noqa: TRY301 (one error path for every malformation)
        member = base64.b64decode(cursor[len(_CURSOR_TAG) :].encode("ascii"), altchars=b"-_", validate=True)
        if len(member) < 8:
            raise ValueError("length")  # noqa: TRY301
        member[8:].decode()
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError) as exc:
        raise ValueError(f"malformed task list cursor {cursor!r}: pass a next_cursor from list()") from exc
    return member


class RedisTaskBackend:
    """A ``TaskBackend`` on a Redis server, shared by every node that uses the same URL and prefix.

    The constructor only parses the URL; the connection opens on the first operation. ``prefix``
    namespaces every key (no braces). Needs Redis >= 6.2.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "mcpvisor",
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._conn = RedisConnection(url, owner="RedisTaskBackend", request_timeout=request_timeout)
        self._p = check_prefix(prefix)
        self._tx = f"{self._p}:tx"
        self._ti = f"{self._p}:ti"

    @property
    def cluster_target(self) -> tuple[str, str]:
        """``(url, key prefix)`` of this backend's Redis, for the runtime's cluster event bus, which
        opens connections of its own to the same server under the same prefix."""
        return self._conn.address.url(), self._p

    def __repr__(self) -> str:
        return f"RedisTaskBackend({self._conn.address.redacted()!r}, prefix={self._p[1:-1]!r})"

    def _record_key(self, task_id: str) -> str:
        return f"{self._p}:t:{task_id}"

    async def create(self, record: TaskRecord) -> TaskRecord:
        stored = attrs.evolve(record, version=1)
        member = _member(record)
        created = await self._conn.script(
            _CREATE,
            [self._record_key(record.task_id), self._tx, self._ti, f"{self._p}:to:{record.owner}"],
            [
                self._p,
                record.task_id,
                record.status.value,
                record.owner,
                member,
                _pack(record),
                _expiry_ms(record),
                _locator(record, member),
            ],
        )
        if created != 1:
            raise TaskExists(f"task {record.task_id!r} already exists")
        return stored

    async def get(self, task_id: str) -> TaskRecord | None:
        client = await self._conn.client()
        try:
            reply = await client.hmget(self._record_key(task_id), ["v", "s", "o", "d"])
        except Exception as exc:
            if self._conn.closed:
                raise self._conn.closed_error() from exc
            raise
        version, status, owner, data = reply
        if version is None or status is None or owner is None or data is None:
            return None
        return _unpack(task_id, owner.decode(), status, version, data)

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        member = _member(record)
        reply = cast(
            builtins.list[Any],
            await self._conn.script(
                _UPDATE,
                [self._record_key(record.task_id), self._tx, self._ti],
                [
                    self._p,
                    record.task_id,
                    str(expected_version),
                    record.status.value,
                    record.owner,
                    member,
                    _pack(record),
                    _expiry_ms(record),
                    _locator(record, member),
                ],
            ),
        )
        outcome = reply[0]
        if outcome == b"ok":
            return attrs.evolve(record, version=int(reply[1]))
        if outcome == b"missing":
            raise TaskNotFound(f"task {record.task_id!r} does not exist (never created, deleted or expired)")
        if outcome == b"conflict":
            raise VersionConflict(record.task_id, expected_version, int(reply[1]))
        if outcome == b"immutable":
            raise InvalidTransition(f"task {record.task_id!r}: owner and created_at cannot change")
        check_transition(record.task_id, TaskStatus(reply[1].decode()), record.status)
        raise AssertionError(f"unexpected reply from the update script: {reply!r}")

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        start = b"-" if cursor is None else b"(" + _decode_cursor(cursor)
        reply = cast(
            builtins.list[Any],
            await self._conn.script(_LIST, [f"{self._p}:to:{owner}"], [self._p, owner, start, str(limit)]),
        )
        flat, more = reply
        records = tuple(
            _unpack(flat[i + 2].decode(), owner, flat[i + 1], flat[i], flat[i + 3])
            for i in range(0, len(flat), 4)
        )
        next_cursor = _encode_cursor(_member(records[-1])) if more and records else None
        return TaskPage(records, next_cursor)

    async def delete(self, task_id: str) -> bool:
        deleted = await self._conn.script(
            _DELETE, [self._record_key(task_id), self._tx, self._ti], [self._p, task_id]
        )
        return deleted == 1

    async def expire(self) -> int:
        total = 0
        while True:
            reply = cast(
                builtins.list[int],
                await self._conn.script(_EXPIRE, [self._tx, self._ti], [self._p, str(_EXPIRE_BATCH)]),
            )
            removed, visited = reply
            total += removed
            # A full batch that cleaned nothing is ids whose record Redis has not expired yet (a
            # millisecond at the boundary): stop rather than spin; the next expire() gets them.
            if visited < _EXPIRE_BATCH or removed == 0:
                return total

    async def aclose(self) -> None:
        await self._conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
