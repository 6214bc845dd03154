"""Hashing and checking a password (argon2id, about 100 ms of CPU) leave the event loop free: a
sign-in must not stall the process's other requests (webhook calls among them) for that long."""

from __future__ import annotations

import asyncio
import time

import pytest
from millrace_common.platform.auth import Passwords

pytestmark = pytest.mark.unit


async def _ticks_while(work) -> tuple[object, int, float]:
    """``work``'s result, how often a 1 ms ticker ran meanwhile, and the longest gap between ticks."""
    ticks = 0
    longest = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks, longest
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        result = await work
    finally:
        done.set()
        await task
    return result, ticks, longest


async def test_a_check_and_a_hash_let_the_loop_run() -> None:
    passwords = Passwords()
    stored = passwords.hash("correct horse battery")
    ok, ticks, _ = await _ticks_while(passwords.verified(stored, "correct horse battery"))
    assert ok is True
    assert ticks >= 5, "the loop ran while the password was checked"
    wrong, _, _ = await _ticks_while(passwords.verified(stored, "wrong"))
    assert wrong is False
    made, ticks, _ = await _ticks_while(passwords.hashed("another one"))
    assert passwords.verify(str(made), "another one")
    assert ticks >= 5


def test_the_plain_check_is_what_would_block() -> None:
    """The reason for the above: one check costs tens of milliseconds of CPU."""
    passwords = Passwords()
    stored = passwords.hash("pw")
    started = time.process_time()
    passwords.verify(stored, "pw")
    assert time.process_time() - started > 0.01
