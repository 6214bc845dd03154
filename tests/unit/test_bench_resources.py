"""The bench's CPU figures: what a JVM spent compiling is told apart (``bench.e2e.resource_figures``),
read from the threads /proc names as HotSpot's compilers (``bench.e2e_procs.compiler_ms``)."""

from __future__ import annotations

import ctypes
import os
import threading
import time

from bench.e2e import resource_figures
from bench.e2e_procs import Tracked, compiler_ms

_PR_SET_NAME = 15


def _named_busy_thread(name: bytes, seconds: float, busy: threading.Event, release: threading.Event):
    """A thread that names itself, works ``seconds`` of its own CPU, says so, and stays alive until
    released (an ended thread's time leaves /proc with it)."""

    def work() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
        until = time.thread_time() + seconds
        while time.thread_time() < until:
            pass
        busy.set()
        release.wait()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_the_time_of_threads_named_as_hotspot_compilers_is_counted_and_no_other():
    before = compiler_ms(os.getpid())
    release = threading.Event()
    other_busy, compiler_busy = threading.Event(), threading.Event()
    threads = [
        _named_busy_thread(b"data-plane-kafk", 0.3, other_busy, release),
        _named_busy_thread(b"C2 CompilerThread0", 0.3, compiler_busy, release),
    ]
    try:
        assert other_busy.wait(30) and compiler_busy.wait(30)
        compiled = compiler_ms(os.getpid()) - before
        # The compiler's 0.3 s (in ticks of 10 ms), not the other thread's besides.
        assert 250 <= compiled < 450
    finally:
        release.set()
        for thread in threads:
            thread.join()


def test_a_process_that_is_gone_has_no_compiler_time():
    assert compiler_ms(2**22 + 12345) == 0.0


def test_the_share_spent_compiling_is_told_for_the_process_that_compiled_only():
    tracked = [Tracked("kafka", 1), Tracked("trigger", 2), Tracked("bench client", 3, system=False)]
    before = {"kafka": 1_000.0, "trigger": 500.0, "bench client": 0.0}
    after = {"kafka": 2_000.0, "trigger": 900.0, "bench client": 100.0}
    figures = resource_figures(
        tracked, before, after, wall=2.0, runs=100, compiled={"kafka": 250.0, "trigger": 0.0}
    )
    remarks = {f.what: f.remark for f in figures}
    assert remarks["CPU kafka"] == "50% of a core, 25% of it JIT compiling"
    assert remarks["CPU trigger"] == "20% of a core"
    assert remarks["CPU bench client"] == "5% of a core; not in the total"
    values = {f.what: f.value for f in figures}
    assert values["CPU kafka"] == 10.0  # the compiling stays in the process's time per run
    assert values["CPU services + Kafka + PostgreSQL"] == 14.0
    assert resource_figures(tracked, before, after, 2.0, 100)[0].remark == "50% of a core"
