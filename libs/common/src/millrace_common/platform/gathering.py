"""When a batch consumer is near its capacity, a small batch waits a moment for more.

A batch costs its consumer a share of its own, whatever it holds: the poll, the transaction's round
trips and commit, the produce and its acknowledgement. A consumer that spends nearly all its time in
batches is close to what it can handle, and there that fixed share, paid for one or two records at a
time, is what it spends most of its CPU on, CPU the other stages on the same cores need. Waiting a few
milliseconds before handling turns small batches into larger ones at that point and only there: a
consumer with time to spare handles what arrives at once. The trigger service's record events are
where this pays (docs/benchmarks.md): at half its burst rate it handled under three events a batch.

:class:`Gathering` decides; the consumer measures (how long it waited for the first records, how long
it handled them) and waits. The busy share is the handling time's moving average over the sum of the
two moving averages (time-weighted, so a long batch counts for more than a short one), and one slow
batch does not start gathering. A wait for more records counts as neither: once a consumer gathers, it
goes on while records keep arriving faster than it handles a batch, and stops when it finds itself
waiting for the first records again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUSY_SHARE = 0.8
"""The share of its time a consumer must spend handling batches (on the moving averages) to gather."""
WEIGHT = 0.2
"""How much each batch moves the averages: about the last ten batches count."""


@dataclass
class Gathering:
    """How long a polled batch waits for more records before it is handled."""

    wait_seconds: float
    """The longest wait; 0 never waits."""
    below_records: int
    """A batch of this many records or more is handled at once; the wait ends when one is reached."""
    idle: float = field(default=0.0)
    """The moving average of the time waited for a batch's first records (seconds)."""
    handling: float = field(default=0.0)
    """The moving average of the time spent handling a batch (seconds)."""

    @property
    def busy(self) -> float:
        """The share of time spent handling batches, 0 before any was handled."""
        spent = self.idle + self.handling
        return self.handling / spent if spent > 0 else 0.0

    def wait_for(self, records: int) -> float:
        """Seconds for a batch of ``records`` records to wait for more (0: handle it now)."""
        if self.wait_seconds <= 0 or records >= self.below_records or self.busy < BUSY_SHARE:
            return 0.0
        return self.wait_seconds

    def handled(self, *, idle_seconds: float, handling_seconds: float) -> None:
        """A batch was handled after the consumer waited ``idle_seconds`` for its first records."""
        self.idle += WEIGHT * (max(idle_seconds, 0.0) - self.idle)
        self.handling += WEIGHT * (max(handling_seconds, 0.0) - self.handling)
