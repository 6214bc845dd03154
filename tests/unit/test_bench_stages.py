"""The bench's split of completions into stages (``bench.e2e_stages.stage_figures``): each step between
two recorded moments gets its p50 and p99 over the runs that have both, and its median among the
slowest completions, so a tail shows which step it came from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.e2e_stages import Mark, stage_figures, worst_windows


def hook_mark(sent: float, queue_ms: float, *, received_ms: float = 1.0) -> Mark:
    """A webhook call whose StartRun waited ``queue_ms`` before the orchestrator decided its run."""
    received = sent + received_ms / 1000
    start_out = received + 0.002
    decided = start_out + queue_ms / 1000
    return Mark(sent, received, received + 0.003, received, start_out, decided, decided + 0.004)


def by_step(figures) -> dict[str, tuple[float, str]]:
    return {f.what.removesuffix(" p50"): (f.value, f.remark) for f in figures}


def test_the_slowest_runs_show_the_step_that_made_them_slow():
    marks = [hook_mark(100 + i / 100, 5.0) for i in range(198)]
    marks += [hook_mark(103, 90.0), hook_mark(103.5, 110.0)]  # two runs queued at the orchestrator
    steps = by_step(stage_figures(marks, hooks=True))
    assert list(steps) == [
        "sent -> received",
        "received -> answered",
        "received -> StartRun out",
        "StartRun out -> decided",
        "decided -> ended out",
    ]
    value, remark = steps["StartRun out -> decided"]
    assert round(value, 6) == 5.0
    assert "slowest 2 (>= 93 ms): median 100.0, max 110.0" in remark
    value, remark = steps["sent -> received"]
    assert round(value, 6) == 1.0
    assert "median 1.0, max 1.0" in remark  # not where the tail came from


def test_a_moment_not_found_leaves_that_run_out_of_its_steps_only():
    whole = hook_mark(100, 5.0)
    no_start_out = Mark(101, 101.001, 101.004, 101.001, None, 101.01, 101.02)
    steps = by_step(stage_figures([whole, no_start_out], hooks=True))
    assert round(steps["received -> StartRun out"][0], 6) == 2.0  # from the first run alone
    assert "1 of 2 runs lack a moment of it" in steps["received -> StartRun out"][1]
    assert round(steps["decided -> ended out"][0], 6) == 10.0  # nearest rank: the upper of two
    assert "lack a moment" not in steps["decided -> ended out"][1]
    assert round(steps["sent -> received"][0], 6) == 1.0


def test_record_events_are_split_at_the_match_and_runs_never_decided_are_left_out():
    matched = Mark(100, None, None, 100.010, 100.012, 100.020, 100.025)
    undecided = Mark(100, None, None, 100.010, None, None, None)
    steps = by_step(stage_figures([matched, undecided], hooks=False))
    assert list(steps) == [
        "sent -> matched",
        "matched -> StartRun out",
        "StartRun out -> decided",
        "decided -> ended out",
    ]
    assert [round(v, 6) for v, _ in steps.values()] == [10.0, 2.0, 8.0, 5.0]
    assert stage_figures([undecided], hooks=False) == []


@given(st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=300))
def test_the_tail_is_one_percent_of_the_runs_at_least_one(queues):
    marks = [hook_mark(100 + i, q) for i, q in enumerate(queues)]
    remark = by_step(stage_figures(marks, hooks=True))["StartRun out -> decided"][1]
    expected = max(1, round(len(queues) * 0.01))
    assert f"slowest {expected} (" in remark


def test_the_worst_windows_name_the_step_their_slowest_runs_waited_in():
    marks = [hook_mark(100 + i / 100, 5.0) for i in range(300)]  # 3 s at 100 calls/s
    marks += [hook_mark(101.5 + i / 1000, 120.0) for i in range(10)]  # a stall in the second second
    figures = worst_windows(marks, 1.0, hooks=True)
    assert figures[0].what == "1-2 s: completion p99"
    assert round(figures[0].value, 3) == 123.0  # received 1 ms, StartRun out 2 ms later, then 120
    assert "StartRun out -> decided 120.0" in figures[0].remark
    assert "sent -> received 1.0" in figures[0].remark
    assert len(figures) == 3
    assert worst_windows([], 1.0, hooks=True) == []
