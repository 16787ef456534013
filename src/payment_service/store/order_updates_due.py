"""Order updates due: an approved payment the db-service must still be told about, kept until it was.

A row is written in the transaction that stores the approval (`payments.update_payment`, whichever flow
approved it: the pay flow, the reconciler, a webhook, a manual resolution), so a crash right after the
commit cannot forget it. It is deleted once the db-service accepted the order update, or once the refused
charge was given back or left for a person (`services/order_updates.py`). The worker's sweep takes the
rows left over: each is leased to one sweep at a time (a conditional update, as the reconciliation
leases), tried, and then deleted or put off (`due_at` later, `attempts` one more).
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, String, any_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.store.database import Database
from payment_service.store.statements import Statement
from payment_service.store.tables import order_updates_due

_due = order_updates_due

# Both on the pay flow's path: compiled once (`store/statements.py`).
_INSERT = Statement(insert(_due), column_keys=("payment_id", "due_at", "attempts"))
_DELETE = Statement(delete(_due).where(_due.c.payment_id == bindparam("b_payment_id")))
_DELETE_ALL = Statement(
    delete(_due).where(_due.c.payment_id == any_(bindparam("b_ids", type_=postgresql.ARRAY(String))))
)


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(_due.c.lease_until.is_(None), _due.c.lease_until < now)


async def add_due(conn: AsyncConnection, payment_id: str, *, due_at: datetime) -> None:
    """Record that the order of `payment_id` must still be told (in the approval's transaction)."""
    await _INSERT.execute(conn, {"payment_id": payment_id, "due_at": due_at, "attempts": 0})


async def clear_due(conn: AsyncConnection, payment_id: str) -> None:
    """The obligation is met (or handed to a person): nothing is due for `payment_id` any more."""
    await _DELETE.execute(conn, {"b_payment_id": payment_id})


async def clear_all_due(conn: AsyncConnection, payment_ids: Sequence[str]) -> None:
    """`clear_due` of each of `payment_ids`: one statement on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        await _DELETE_ALL.execute(conn, {"b_ids": list(payment_ids)})
    else:
        await _DELETE.execute_many(conn, [{"b_payment_id": payment_id} for payment_id in payment_ids])


class Clearances:
    """`clear_due` for many callers at once: those that arrive while one delete runs share the next.

    Under load many payments tell their orders at the same moment, and a delete each is a round trip
    and a server transaction each on PostgreSQL. `clear` still returns only once the caller's row is
    deleted (or raises what the delete raised), as `clear_due` does.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: list[str] = []
        self._next: asyncio.Future[None] | None = None  # the delete the waiting ids go in
        self._running: asyncio.Task[None] | None = None

    async def clear(self, payment_id: str) -> None:
        self._waiting.append(payment_id)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # Nobody may be left to read a failure (its waiters cancelled): read it here, so it is not logged.
            self._next.add_done_callback(lambda done: done.cancelled() or done.exception())
        deleted = self._next
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._delete_waiting())
            self._running.add_done_callback(self._never_ran)
        await asyncio.shield(deleted)

    def _never_ran(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never enters its `try`: its waiters would wait forever,
        # and so would every later caller (`_running` still set). A task that ran has reset `_running`.
        if task is not self._running:
            return
        if self._next is not None and not self._next.done():
            self._next.cancel()
        self._waiting, self._next, self._running = [], None, None

    async def _delete_waiting(self) -> None:
        deleted: asyncio.Future[None] | None = None
        try:
            while self._waiting:
                payment_ids, self._waiting = self._waiting, []
                deleted, self._next = self._next, None
                assert deleted is not None  # noqa: S101 - set with the first id waiting
                try:
                    async with self._database.autocommit() as conn:
                        await clear_all_due(conn, payment_ids)
                except Exception as error:  # noqa: BLE001 - every waiter gets it, as from its own delete
                    deleted.set_exception(error)
                else:
                    deleted.set_result(None)
        except BaseException:  # cancelled (shutting down): nobody may wait for a delete that will not come
            for future in (deleted, self._next):
                if future is not None and not future.done():
                    future.cancel()
            self._waiting, self._next = [], None
            raise
        finally:
            self._running = None


async def fetch_due(conn: AsyncConnection, *, due_before: datetime, now: datetime, limit: int) -> Sequence[str]:
    """Payment ids due before `due_before` that no sweep holds, oldest first."""
    rows = await conn.execute(
        select(_due.c.payment_id).where(_due.c.due_at <= due_before, _free(now)).order_by(_due.c.due_at).limit(limit)
    )
    return [row[0] for row in rows]


async def claim_due(
    conn: AsyncConnection, payment_id: str, *, due_before: datetime, now: datetime, lease_until: datetime
) -> int | None:
    """Lease one due row to the caller; the attempts made so far, or None when it is not due or another holds it."""
    claimed = await conn.execute(
        update(_due)
        .where(_due.c.payment_id == payment_id, _due.c.due_at <= due_before, _free(now))
        .values(lease_until=lease_until)
    )
    if claimed.rowcount != 1:
        return None
    attempts = await conn.execute(select(_due.c.attempts).where(_due.c.payment_id == payment_id))
    return int(attempts.scalar_one())


async def put_off(conn: AsyncConnection, payment_id: str, *, due_at: datetime, attempts: int) -> None:
    """Give the lease back and try again from `due_at`."""
    await conn.execute(
        update(_due).where(_due.c.payment_id == payment_id).values(due_at=due_at, attempts=attempts, lease_until=None)
    )


async def count_due(conn: AsyncConnection, *, due_before: datetime) -> int:
    """How many obligations were due before `due_before` and are still owed (for the overdue gauge)."""
    result = await conn.execute(select(func.count()).select_from(_due).where(_due.c.due_at <= due_before))
    return int(result.scalar_one())
