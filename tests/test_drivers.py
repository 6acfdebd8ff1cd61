"""drivers.Watchdog: what it ends, and that it costs nothing while nothing is leased."""

from __future__ import annotations

import asyncio
import time

import pytest

from interventions.drivers import Watchdog


class _Statement:
    def __init__(self, since: float, *, fails: bool = False) -> None:
        self.since = since
        self.fails = fails
        self.stalled = 0

    def stall(self) -> None:
        self.stalled += 1
        if self.fails:
            raise RuntimeError("the transport was already gone")


async def test_the_watchdog_ends_what_waited_too_long_and_sleeps_when_nothing_is_leased(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dog = Watchdog(0.2)
    assert dog.deadline == pytest.approx(1.22)  # the limit, one second, a tenth of the limit
    assert dog.interval == pytest.approx(0.05)
    now = time.monotonic()
    failing = _Statement(now - 10, fails=True)  # waited too long; ending it fails
    stuck = _Statement(now - 10)  # waited too long
    idle = _Statement(0.0)  # leased, no statement in flight
    running = _Statement(now)  # in flight, within the limit
    released = [dog.watch(s) for s in (failing, stuck, idle, running)]
    assert dog.armed
    await asyncio.sleep(dog.interval * 4)
    assert (failing.stalled, stuck.stalled, idle.stalled, running.stalled) == (1, 1, 0, 0)
    assert "ending a stalled database connection failed" in caplog.text
    for release in released:
        release()
    await asyncio.sleep(dog.interval * 3)
    assert not dog.armed  # no sweep while nothing is leased
    later = _Statement(time.monotonic() - 10)
    release = dog.watch(later)
    assert dog.armed
    await asyncio.sleep(dog.interval * 3)
    assert later.stalled == 1
    release()
    dog.close()
    assert not dog.armed
