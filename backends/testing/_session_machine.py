"""Conformance of a ``SessionStateStore`` against a dict model with TTLs."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from .._behaviours import DEFAULT_VALUE_TTL, SessionStateStore
from ._clock import ALIVE, DEAD, MAYBE, Window, liveness
from ._machine_base import BackendMachine, expect_ok

# Sessions and keys that collide when a backend joins them naively ("a" + "b:k" vs "a:b" + "k").
SESSIONS = ("s1", "a", "a:b", "sé ß")
KEYS = ("k", "b:k", "x", "ü/*?")
COLLIDING = (("a", "b:k"), ("a:b", "k"))
FAKE_TTLS = (None, 0.5, 1.0, 2.0, 5.0, 0.0)  # 0: expired at once
REAL_TTLS = (None, 0.05, 0.1, 0.2, 0.3, 0.0)
FAKE_STEPS = (0.5, 1.0, 2.0, 3.0)
REAL_STEPS = (0.05, 0.1, 0.15)


@attrs.frozen
class _Entry:
    value: bytes
    expires_lo: float | None
    expires_hi: float | None

    def liveness(self, window: Window) -> str:
        return liveness(self.expires_lo, self.expires_hi, window)


class SessionStoreMachine(BackendMachine):
    """Random get/put/delete/keys/drop_session/expire sequences, every answer checked."""

    default_ttl: ClassVar[float | None] = DEFAULT_VALUE_TTL

    def __init__(self) -> None:
        super().__init__()
        self.store: Any = self.backend
        assert isinstance(self.store, SessionStateStore), f"{self.store!r} is not a SessionStateStore"
        self.model: dict[tuple[str, str], _Entry] = {}
        # Values dropped from the model because they expired, which a lazy backend may still hold on disk
        # until the next expire(): they count towards what expire() may report.
        self.forgotten = 0
        self.ttls = REAL_TTLS if self.real_time else FAKE_TTLS
        self.steps = REAL_STEPS if self.real_time else FAKE_STEPS

    @rule(
        session=st.sampled_from(SESSIONS),
        key=st.sampled_from(KEYS),
        value=st.sampled_from([b"", b"\x00", b"v"]) | st.binary(max_size=40),
        ttl_index=st.integers(0, len(FAKE_TTLS) - 1),
        read_back=st.booleans(),
    )
    def put(self, session: str, key: str, value: bytes, ttl_index: int, read_back: bool) -> None:
        self._check_put(session, key, value, ttl_index)
        if read_back:
            self._check_get(session, key)

    def _check_put(self, session: str, key: str, value: bytes, ttl_index: int) -> None:
        ttl = self.ttls[ttl_index]
        result, window = self.call(self.store.put, session, key, value, ttl=ttl)
        expect_ok(result, f"put({session!r}, {key!r}, ttl={ttl})")
        assert result is None, f"put returned {result!r}, expected None"
        self._stored(session, key, value, ttl, window)

    def _stored(self, session: str, key: str, value: bytes, ttl: float | None, window: Window) -> None:
        lifetime = self.default_ttl if ttl is None else ttl
        if lifetime is None:
            self.model[session, key] = _Entry(value, None, None)
        else:
            self.model[session, key] = _Entry(value, window.start + lifetime, window.end + lifetime)

    @precondition(lambda self: hasattr(self.store, "compare_and_set"))
    @rule(
        pick=st.integers(0, 8 + len(SESSIONS) * len(KEYS) - 1),
        value=st.sampled_from([b"", b"v"]) | st.binary(max_size=20),
        ttl_index=st.integers(0, len(FAKE_TTLS) - 1),
        stale=st.booleans(),
    )
    def compare_and_set(self, pick: int, value: bytes, ttl_index: int, stale: bool) -> None:
        """Optional (``AtomicSessionStateStore``): a write only if the live value is the expected one.

        ``expected`` is what the model holds (``None`` when it holds nothing) or, when ``stale``, a
        value that is certainly not the live one; an entry that expired makes the model's value stale
        too (the live value is then "absent").
        """
        session, key = self._choose(pick)
        entry = self.model.get((session, key))
        held = None if entry is None else entry.value
        if stale:
            expected: bytes | None = b"stale" if held is None else held + b"!"
        else:
            expected = held
        ttl = self.ttls[ttl_index]
        what = f"compare_and_set({session!r}, {key!r}, expected={expected!r}, ttl={ttl})"
        result, window = self.call(self.store.compare_and_set, session, key, expected, value, ttl=ttl)
        expect_ok(result, what)
        assert isinstance(result, bool), f"{what} returned {result!r}, expected a bool"
        state = DEAD if entry is None else entry.liveness(window)
        if state == MAYBE:
            # Expiring during the call: either verdict, and the model follows the backend's.
            if result:
                assert not stale, f"{what} = True, but the live value is {held!r} or absent"
                self._stored(session, key, value, ttl, window)
            elif not stale:
                del self.model[session, key]  # it must have expired: the live value is absent now
                self.forgotten += 1
            return
        live = held if state == ALIVE else None
        assert result is (expected == live), f"{what} = {result!r}, but the live value is {live!r}"
        if result:
            self._stored(session, key, value, ttl, window)
        self._check_get(session, key)

    def _choose(self, pick: int) -> tuple[str, str]:
        """Mostly a key the model holds (so reads hit), sometimes any session and key."""
        held = sorted(self.model)
        if pick < 8:
            if held:
                return held[pick % len(held)]
            pick += 8
        combo = (pick - 8) % (len(SESSIONS) * len(KEYS))
        return SESSIONS[combo // len(KEYS)], KEYS[combo % len(KEYS)]

    @rule(pick=st.integers(0, 8 + len(SESSIONS) * len(KEYS) - 1))
    def get(self, pick: int) -> None:
        self._check_get(*self._choose(pick))

    def _check_get(self, session: str, key: str) -> None:
        result, window = self.call(self.store.get, session, key)
        expect_ok(result, f"get({session!r}, {key!r})")
        entry = self.model.get((session, key))
        state = DEAD if entry is None else entry.liveness(window)
        if state == ALIVE:
            assert entry is not None
            assert result == entry.value, f"get({session!r}, {key!r}) = {result!r}, expected {entry.value!r}"
            assert type(result) is bytes, f"get returned {type(result).__name__}, expected bytes"
        elif state == DEAD:
            assert result is None, (
                f"get({session!r}, {key!r}) = {result!r}, expected None (absent or expired"
                + ("" if entry is None else f": it expired at {entry.expires_lo}, now is {window.start}")
                + ")"
            )
        elif result is None:
            del self.model[session, key]
            self.forgotten += 1
        else:
            assert entry is not None
            assert result == entry.value, f"get({session!r}, {key!r}) = {result!r}, expected {entry.value!r}"

    @rule(pick=st.integers(0, 8 + len(SESSIONS) * len(KEYS) - 1))
    def delete(self, pick: int) -> None:
        self._check_delete(*self._choose(pick))

    def _check_delete(self, session: str, key: str) -> None:
        result, window = self.call(self.store.delete, session, key)
        expect_ok(result, f"delete({session!r}, {key!r})")
        entry = self.model.pop((session, key), None)
        state = DEAD if entry is None else entry.liveness(window)
        if state != MAYBE:
            expected = state == ALIVE
            assert result is expected, f"delete({session!r}, {key!r}) = {result!r}, expected {expected}"
        else:
            assert isinstance(result, bool), f"delete returned {result!r}, expected a bool"

    @rule(session=st.sampled_from(SESSIONS))
    def keys(self, session: str) -> None:
        self._check_keys(session)

    @rule()
    def keys_of_every_session(self) -> None:
        """All sessions at once: a key listed under a neighbour ('a' vs 'a:b') is caught right away."""
        for session in SESSIONS:
            self._check_keys(session)

    def _check_keys(self, session: str) -> None:
        result, window = self.call(self.store.keys, session)
        expect_ok(result, f"keys({session!r})")
        assert isinstance(result, list), f"keys returned {type(result).__name__}, expected list"
        assert result == sorted(set(result)), f"keys({session!r}) = {result!r}: not sorted or duplicated"
        states = {k: e.liveness(window) for (s, k), e in self.model.items() if s == session}
        required = {k for k, state in states.items() if state == ALIVE}
        allowed = required | {k for k, state in states.items() if state == MAYBE}
        got = set(result)
        assert required <= got <= allowed, f"keys({session!r}) = {result!r}, expected {sorted(required)}" + (
            f" plus any of {sorted(allowed - required)} (expiring)" if allowed != required else ""
        )
        for k, state in states.items():
            if state == MAYBE and k not in got:
                del self.model[session, k]
                self.forgotten += 1

    @rule(
        values=st.tuples(st.binary(min_size=1, max_size=4), st.binary(min_size=1, max_size=4)),
        ttl_index=st.integers(0, len(FAKE_TTLS) - 1),
    )
    def put_colliding(self, values: tuple[bytes, bytes], ttl_index: int) -> None:
        """Put ``('a', 'b:k')`` and ``('a:b', 'k')``: one key if a backend joins them with ':'."""
        for (session, key), value in zip(COLLIDING, values, strict=True):
            self._check_put(session, key, value, ttl_index)
        for session, key in COLLIDING:
            self._check_get(session, key)
        self._check_keys(COLLIDING[0][0])

    @rule(pick=st.integers(0, 3 + len(SESSIONS)))
    def drop_session(self, pick: int) -> None:
        """Mostly a session the model holds values of (so there is something to drop)."""
        held = sorted({session for session, _ in self.model})
        session = held[pick % len(held)] if held and pick < 4 else SESSIONS[pick % len(SESSIONS)]
        result, _ = self.call(self.store.drop_session, session)
        expect_ok(result, f"drop_session({session!r})")
        dropped = [sk for sk in self.model if sk[0] == session]
        for sk in dropped:
            del self.model[sk]
        # Nothing of the session may survive, whatever TTL or index each value had.
        self._check_keys(session)
        for s, k in dropped:
            self._check_get(s, k)

    @rule()
    def expire(self) -> None:
        result, window = self.call(self.store.expire)
        expect_ok(result, "expire()")
        assert isinstance(result, int) and not isinstance(result, bool), f"expire returned {result!r}"
        states = {sk: e.liveness(window) for sk, e in self.model.items()}
        # Lazy removal on reads is allowed, so only an upper bound: never more than could have expired.
        could = sum(1 for state in states.values() if state != ALIVE) + self.forgotten
        self.forgotten = 0
        assert 0 <= result <= could, f"expire() = {result}, but at most {could} values were past their TTL"
        for sk, state in states.items():
            if state == DEAD:
                del self.model[sk]

    @rule(step_index=st.integers(0, len(FAKE_STEPS) - 1))
    def advance(self, step_index: int) -> None:
        self.advance_time(self.steps[min(step_index, len(self.steps) - 1)])

    def _next_expiry(self) -> float | None:
        now = self.now()
        future = [
            e.expires_lo for e in self.model.values() if e.expires_lo is not None and e.expires_lo > now
        ]
        return min(future, default=None)

    @precondition(lambda self: not self.real_time and self._next_expiry() is not None)
    @rule(delete=st.booleans())
    def reach_an_expiry(self, delete: bool) -> None:
        """Jump the fake clock to exactly the next expiry instant and look at what expires there.

        A value is gone when ``now >= expires_at``; a backend that compares with ``>`` still returns it
        at this one instant, which random clock steps hit too rarely to rely on.
        """
        next_expiry = self._next_expiry()
        assert next_expiry is not None
        self.advance_time(next_expiry - self.now())
        due = sorted(sk for sk, e in self.model.items() if e.expires_lo == next_expiry)
        for session, key in due:
            self._check_get(session, key)
        for session in sorted({session for session, _ in due}):
            self._check_keys(session)
        if delete:
            self._check_delete(*due[0])

    @precondition(
        lambda self: (
            not self.real_time and hasattr(self.store, "compare_and_set") and self._next_expiry() is not None
        )
    )
    @rule(value=st.binary(max_size=8))
    def compare_and_set_at_an_expiry(self, value: bytes) -> None:
        """At exactly a value's expiry instant, before any read: expecting the old value must fail
        (the live value is absent now), and expecting absence must succeed."""
        next_expiry = self._next_expiry()
        assert next_expiry is not None
        self.advance_time(next_expiry - self.now())
        session, key = min(sk for sk, e in self.model.items() if e.expires_lo == next_expiry)
        held = self.model[session, key].value
        what = f"compare_and_set({session!r}, {key!r}, expected={held!r}) at its expiry instant"
        result, _ = self.call(self.store.compare_and_set, session, key, held, value)
        expect_ok(result, what)
        assert result is False, f"{what} = {result!r}, but the live value is None (expired)"
        result, window = self.call(self.store.compare_and_set, session, key, None, value)
        absent = f"compare_and_set({session!r}, {key!r}, expected=None) at its expiry instant"
        expect_ok(result, absent)
        assert result is True, f"{absent} = {result!r}, but the live value is None (expired)"
        self._stored(session, key, value, None, window)
        self._check_get(session, key)

    @precondition(lambda self: not self.real_time and self.default_ttl is not None)
    @rule()
    def advance_past_default_ttl(self) -> None:
        assert self.default_ttl is not None
        self.advance_time(self.default_ttl)
