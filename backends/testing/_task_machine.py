"""Conformance of a ``TaskBackend`` against a dict model: CAS, transitions, paging, expiry."""

from __future__ import annotations

from typing import Any

import attrs
import trio
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from .._behaviours import TaskBackend
from .._errors import InvalidTransition, TaskExists, TaskNotFound, VersionConflict
from .._task_record import TaskRecord, TaskStatus, check_transition
from ._clock import ALIVE, DEAD, MAYBE, Window, liveness
from ._machine_base import BackendMachine, expect_ok

TASK_IDS = tuple(f"task-{i}" for i in range(6))
OWNERS = ("alice", "bob")
# Indexes into the per-mode tuples below (drawn as ints so fake and real time share the rules).
FAKE = {"back": (0.0, 0.0, 0.5, 1.0), "ttl": (None, 2.0, 3.0, 5.0), "new_ttl": (None, 1.0, 4.0)}
REAL = {"back": (0.0, 0.0, 0.01, 0.02), "ttl": (None, 0.1, 0.2, 0.3), "new_ttl": (None, 0.05, 0.25)}
FAKE_STEPS = (0.5, 1.0, 2.0)
REAL_STEPS = (0.05, 0.1, 0.15)
BAD_CURSORS = ("!!not a cursor!!", "", "eyJ4IjoxfQ")

_small_floats = st.sampled_from([None, 0.0, 0.5, 3.0, 100.0])
_payloads = st.none() | st.binary(max_size=16)


def _live_state(record: TaskRecord | None, window: Window) -> str:
    if record is None:
        return DEAD
    expires_at = record.expires_at
    return liveness(expires_at, expires_at, window)


def _order(record: TaskRecord) -> tuple[float, str]:
    return (-record.created_at, record.task_id)


class TaskBackendMachine(BackendMachine):
    """Random create/get/update/list/delete/expire sequences, every answer checked."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: Any = self.backend
        assert isinstance(self.tasks, TaskBackend), f"{self.tasks!r} is not a TaskBackend"
        self.model: dict[str, TaskRecord] = {}
        # Records dropped from the model because they expired, which a lazy backend may still hold
        # until the next expire(): they count towards what expire() may report.
        self.forgotten = 0
        self.choices = REAL if self.real_time else FAKE
        self.steps = REAL_STEPS if self.real_time else FAKE_STEPS

    def _choose_id(self, pick: int) -> str:
        """Mostly a task the model holds (so updates chain up to terminal states), sometimes any id."""
        held = sorted(self.model)
        if held and pick < 8:
            return held[pick % len(held)]
        return TASK_IDS[pick % len(TASK_IDS)]

    def _forget(self, task_id: str) -> None:
        del self.model[task_id]
        self.forgotten += 1

    def _pick(self, name: str, index: int) -> Any:
        values = self.choices[name]
        return values[index % len(values)]

    @rule(
        task_id=st.sampled_from(TASK_IDS),
        owner=st.sampled_from(OWNERS),
        back=st.integers(0, 3),
        ttl=st.integers(0, 3),
        status=st.sampled_from([TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED]),
        poll_interval=_small_floats,
        given_version=st.integers(0, 3),
    )
    def create(
        self,
        task_id: str,
        owner: str,
        back: int,
        ttl: int,
        status: TaskStatus,
        poll_interval: Any,
        given_version: int,
    ) -> None:
        now = self.now()
        record = TaskRecord(
            task_id,
            owner,
            status,
            created_at=now - self._pick("back", back),
            updated_at=now,
            ttl=self._pick("ttl", ttl),
            poll_interval=poll_interval,
            version=given_version,
        )
        self._check_create(record)

    def _check_create(self, record: TaskRecord) -> None:
        task_id = record.task_id
        result, window = self.call(self.tasks.create, record)
        state = _live_state(self.model.get(task_id), window)
        if isinstance(result, TaskExists) and state in (ALIVE, MAYBE):
            return
        expect_ok(result, f"create({record!r}) with the id {'taken' if state == ALIVE else 'free'}")
        assert state != ALIVE, f"create of the existing live {task_id!r} succeeded instead of TaskExists"
        expected = attrs.evolve(record, version=1)
        assert result == expected, f"create returned {result!r}, expected {expected!r}"
        self.model[task_id] = expected

    def _burst(self, owner: str, ids: list[str], back: int, ttl: int, limits: list[int]) -> None:
        """Create tasks of one owner at the very same instant, then page through them in small pages.

        Equal ``created_at`` is where ordering and cursors go wrong: the tie-break (``task_id``
        ascending) decides the order, and a cursor that remembers only the timestamp skips or repeats
        the ties that straddle a page boundary. The ids arrive in random order, so insertion order
        is not mistaken for the tie-break either.
        """
        now = self.now()
        created_at = now - self._pick("back", back)
        for task_id in ids:
            record = TaskRecord(
                task_id, owner, created_at=created_at, updated_at=now, ttl=self._pick("ttl", ttl)
            )
            self._check_create(record)
        self._check_list(owner, limits)

    @initialize(
        owner=st.sampled_from(OWNERS),
        ids=st.permutations(TASK_IDS).map(lambda ids: list(ids[:4])),
        count=st.sampled_from([0, 2, 3, 4, 4]),
        ttl=st.integers(0, 3),
        limits=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    )
    def start_with_ties(self, owner: str, ids: list[str], count: int, ttl: int, limits: list[int]) -> None:
        self._burst(owner, ids[:count], 0, ttl, limits)

    @rule(
        owner=st.sampled_from(OWNERS),
        ids=st.permutations(TASK_IDS).map(lambda ids: list(ids[:4])),
        count=st.integers(2, 4),
        back=st.integers(0, 3),
        ttl=st.integers(0, 3),
        limits=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    )
    def create_at_one_instant(
        self, owner: str, ids: list[str], count: int, back: int, ttl: int, limits: list[int]
    ) -> None:
        self._burst(owner, ids[:count], back, ttl, limits)

    def _next_expiry(self) -> float | None:
        now = self.now()
        future = [
            r.expires_at for r in self.model.values() if r.expires_at is not None and r.expires_at > now
        ]
        return min(future, default=None)

    @precondition(lambda self: not self.real_time and self._next_expiry() is not None)
    @rule(limit=st.integers(1, 2))
    def reach_an_expiry(self, limit: int) -> None:
        """Jump the fake clock to exactly the next ``expires_at`` and look at what expires there.

        A record is gone when ``now >= created_at + ttl``; a backend that compares with ``>`` still
        returns it at this one instant, which random clock steps hit too rarely to rely on.
        """
        next_expiry = self._next_expiry()
        assert next_expiry is not None
        self.advance_time(next_expiry - self.now())
        due = sorted(r.task_id for r in self.model.values() if r.expires_at == next_expiry)
        for task_id in due:
            self._check_get(task_id)
        for owner in sorted({self.model[task_id].owner for task_id in due if task_id in self.model}):
            self._check_list(owner, [limit])

    @rule(pick=st.integers(0, 9))
    def get(self, pick: int) -> None:
        self._check_get(self._choose_id(pick))

    def _check_get(self, task_id: str) -> None:
        result, window = self.call(self.tasks.get, task_id)
        expect_ok(result, f"get({task_id!r})")
        stored = self.model.get(task_id)
        state = _live_state(stored, window)
        if state == MAYBE and result is None:
            self._forget(task_id)
        elif state == DEAD:
            assert result is None, f"get({task_id!r}) = {result!r}, expected None" + (
                " (absent or deleted)"
                if stored is None
                else f" (expired at {stored.expires_at}, now is {window.start})"
            )
        else:
            assert result == stored, f"get({task_id!r}) = {result!r}, expected {stored!r}"

    @rule(
        pick=st.integers(0, 9),
        version_delta=st.sampled_from([0, 0, 0, -1, 1]),
        status=st.sampled_from(list(TaskStatus)),
        message=st.none() | st.text(max_size=8),
        progress=_small_floats,
        total=_small_floats,
        result_bytes=_payloads,
        error_bytes=_payloads,
        input_request=_payloads,
        tamper=st.sampled_from([None, None, None, "owner", "created_at"]),
        new_ttl=st.none() | st.integers(0, 2),
    )
    def update(
        self,
        pick: int,
        version_delta: int,
        status: TaskStatus,
        message: str | None,
        progress: float | None,
        total: float | None,
        result_bytes: bytes | None,
        error_bytes: bytes | None,
        input_request: bytes | None,
        tamper: str | None,
        new_ttl: int | None,
    ) -> None:
        task_id = self._choose_id(pick)
        now = self.now()
        stored = self.model.get(task_id)
        base = stored or TaskRecord(task_id, OWNERS[0], created_at=now, updated_at=now, version=1)
        changes: dict[str, Any] = {}
        if tamper == "owner":
            changes["owner"] = base.owner + "-other"
        elif tamper == "created_at":
            changes["created_at"] = base.created_at - 1.0
        if new_ttl is not None:
            changes["ttl"] = self._pick("new_ttl", new_ttl)
        record = attrs.evolve(
            base,
            status=status,
            status_message=message,
            progress=progress,
            total=total,
            result=result_bytes,
            error=error_bytes,
            input_request=input_request,
            updated_at=now,
            version=0,
            **changes,
        )
        expected_version = base.version + version_delta
        result, window = self.call(self.tasks.update, record, expected_version=expected_version)
        what = f"update({record!r}, expected_version={expected_version})"
        state = _live_state(stored, window)
        if state == MAYBE and isinstance(result, TaskNotFound):
            self._forget(task_id)
            return
        if state == DEAD:
            assert isinstance(result, TaskNotFound), f"{what} gave {result!r}, expected TaskNotFound"
            if task_id in self.model:
                self._forget(task_id)
            return
        assert stored is not None
        conflict = expected_version != stored.version
        invalid = tamper is not None or not _transition_allowed(stored.status, status)
        allowed: tuple[type[Exception], ...] = ()
        if conflict:
            allowed += (VersionConflict,)
        if invalid:
            allowed += (InvalidTransition,)
        if allowed:
            assert isinstance(result, allowed), (
                f"{what} gave {result!r}, expected {' or '.join(a.__name__ for a in allowed)}"
                f" (stored: version {stored.version}, status {stored.status.value})"
            )
            return
        expect_ok(result, what)
        expected = attrs.evolve(record, version=expected_version + 1)
        assert result == expected, f"{what} returned {result!r}, expected {expected!r}"
        self.model[task_id] = expected
        if expected.status.is_terminal:
            self._check_terminal_is_final(expected)

    def _check_terminal_is_final(self, record: TaskRecord) -> None:
        """Right after a task finishes, try to bring it back with the correct version: always refused."""
        revived = attrs.evolve(record, status=TaskStatus.WORKING, status_message="revived", version=0)
        result, window = self.call(self.tasks.update, revived, expected_version=record.version)
        if _live_state(record, window) == ALIVE:
            assert isinstance(result, InvalidTransition), (
                f"a {record.status.value} task was updated back to working: {result!r}"
                " (a terminal status is final)"
            )
            after, _ = self.call(self.tasks.get, record.task_id)
            assert after == record, (
                f"after a refused update, get({record.task_id!r}) = {after!r}, expected {record!r}"
            )

    @precondition(lambda self: any(not r.status.is_terminal for r in self.model.values()))
    @rule(pick=st.integers(0, 9), messages=st.tuples(st.text(max_size=4), st.text(max_size=4)))
    def racing_updates(self, pick: int, messages: tuple[str, str]) -> None:
        """Two concurrent updates from the same version: exactly one wins, the other gets VersionConflict."""
        task_id = self._choose_id(pick)
        stored = self.model.get(task_id)
        if stored is None or stored.status.is_terminal:
            return
        contenders = [
            attrs.evolve(stored, status_message=f"{i}:{message}", updated_at=self.now())
            for i, message in enumerate(messages)
        ]

        async def race() -> list[Any]:
            outcomes: list[Any] = [None, None]

            async def one(i: int) -> None:
                try:
                    outcomes[i] = await self.tasks.update(contenders[i], expected_version=stored.version)
                except Exception as exc:
                    outcomes[i] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, 0)
                nursery.start_soon(one, 1)
            return outcomes

        outcomes, window = self.call(race)
        expect_ok(outcomes, "two concurrent updates")
        state = _live_state(stored, window)
        if state == MAYBE and any(isinstance(o, TaskNotFound) for o in outcomes):
            self._forget(task_id)
            return
        if state == DEAD:
            assert all(isinstance(o, TaskNotFound) for o in outcomes), (
                f"updates of an expired task: {outcomes!r}"
            )
            self._forget(task_id)
            return
        winners = [o for o in outcomes if isinstance(o, TaskRecord)]
        losers = [o for o in outcomes if isinstance(o, VersionConflict)]
        assert len(winners) == 1 and len(losers) == 1, (
            f"two updates of {task_id!r} from version {stored.version} raced: got {outcomes!r},"
            " expected exactly one success and one VersionConflict (compare-and-set)"
        )
        winner = winners[0]
        assert winner.version == stored.version + 1, f"the winning update returned version {winner.version}"
        self.model[task_id] = winner

    @rule(
        owner=st.sampled_from(OWNERS),
        limits=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    )
    def list_all_pages(self, owner: str, limits: list[int]) -> None:
        self._check_list(owner, limits)

    def _check_list(self, owner: str, limits: list[int]) -> None:
        """Walk every page of ``owner``'s tasks (page sizes cycle through ``limits``) and check it all."""
        first: Window | None = None
        seen: list[TaskRecord] = []
        cursor: str | None = None
        bound = len(TASK_IDS) + 2
        for page_number in range(bound):
            limit = limits[page_number % len(limits)]
            page, window = self.call(self.tasks.list, owner, cursor=cursor, limit=limit)
            expect_ok(page, f"list({owner!r}, cursor={cursor!r}, limit={limit})")
            first = first or window
            records = list(page.records)
            assert len(records) <= limit, f"list(limit={limit}) returned {len(records)} records"
            if not self.real_time and page.next_cursor is not None:
                assert len(records) == limit, (
                    f"list(limit={limit}) returned {len(records)} records and a next_cursor"
                    " (only the last page may be short)"
                )
            seen.extend(records)
            cursor = page.next_cursor
            if cursor is None:
                break
        else:
            raise AssertionError(f"list({owner!r}) still had a next_cursor after {bound} pages")
        assert first is not None
        walk = Window(first.start, window.end)
        ids = [r.task_id for r in seen]
        assert len(ids) == len(set(ids)), f"list({owner!r}) returned a task twice across pages: {ids}"
        candidates = sorted((r for r in self.model.values() if r.owner == owner), key=_order)
        states = {r.task_id: _live_state(r, walk) for r in candidates}
        possible = [r for r in candidates if states[r.task_id] != DEAD]
        # `seen` must be `possible` minus some MAYBE records, in the same order.
        got = iter(seen)
        current = next(got, None)
        for record in possible:
            if current is not None and current == record:
                current = next(got, None)
            else:
                assert states[record.task_id] == MAYBE, (
                    f"list({owner!r}) walked {ids}, expected {[r.task_id for r in possible]}"
                    f" (newest first: created_at descending, then task_id ascending);"
                    f" missing or different: {record!r}"
                )
                self._forget(record.task_id)
        assert current is None, f"list({owner!r}) returned {current!r}, which the model does not hold"

    @rule(owner=st.sampled_from(OWNERS), cursor=st.sampled_from(BAD_CURSORS))
    def list_rejects_bad_input(self, owner: str, cursor: str) -> None:
        result, _ = self.call(self.tasks.list, owner, cursor=cursor, limit=2)
        assert isinstance(result, ValueError), f"list(cursor={cursor!r}) gave {result!r}, expected ValueError"
        result, _ = self.call(self.tasks.list, owner, limit=0)
        assert isinstance(result, ValueError), f"list(limit=0) gave {result!r}, expected ValueError"

    @rule(pick=st.integers(0, 9))
    def delete(self, pick: int) -> None:
        task_id = self._choose_id(pick)
        result, window = self.call(self.tasks.delete, task_id)
        expect_ok(result, f"delete({task_id!r})")
        state = _live_state(self.model.pop(task_id, None), window)
        if state == MAYBE:
            assert isinstance(result, bool), f"delete returned {result!r}, expected a bool"
        else:
            assert result is (state == ALIVE), f"delete({task_id!r}) = {result!r}, expected {state == ALIVE}"

    @rule()
    def expire(self) -> None:
        result, window = self.call(self.tasks.expire)
        expect_ok(result, "expire()")
        assert isinstance(result, int) and not isinstance(result, bool), f"expire returned {result!r}"
        states = {task_id: _live_state(r, window) for task_id, r in self.model.items()}
        could = sum(1 for state in states.values() if state != ALIVE) + self.forgotten
        self.forgotten = 0
        assert 0 <= result <= could, f"expire() = {result}, but at most {could} records were past their ttl"
        for task_id, state in states.items():
            if state == DEAD:
                del self.model[task_id]

    @rule(step_index=st.integers(0, 2))
    def advance(self, step_index: int) -> None:
        self.advance_time(self.steps[step_index])


def _transition_allowed(old: TaskStatus, new: TaskStatus) -> bool:
    try:
        check_transition("", old, new)
    except InvalidTransition:
        return False
    return True
