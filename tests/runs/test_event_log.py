"""EventLog.follow: what a follower of a run executing here reads."""

import asyncio

import pytest

from graphrun_server.events import EventLog


def _release(log: EventLog, n: int) -> None:
    for _ in range(n):
        log.append("custom", {"data": None})
    log.mark_durable(log.last_sequence)


async def test_a_follower_reads_what_was_released_together_as_one_batch():
    log = EventLog()
    _release(log, 3)
    follower = log.follow(0)
    assert [e.sequence for e in await anext(follower)] == [1, 2, 3]
    _release(log, 2)
    assert [e.sequence for e in await anext(follower)] == [4, 5]


async def test_a_follower_that_never_catches_up_still_stops_at_its_deadline():
    """Events keep coming faster than the reader takes them: once its deadline has passed, the
    next read raises TimeoutError rather than handing over the new batch."""
    log = EventLog()
    _release(log, 2)
    follower = log.follow(0, deadline=asyncio.get_running_loop().time() - 1)
    assert [e.sequence for e in await anext(follower)] == [1, 2]
    _release(log, 2)  # more came while the reader was busy with the first batch
    with pytest.raises(TimeoutError):
        await anext(follower)
