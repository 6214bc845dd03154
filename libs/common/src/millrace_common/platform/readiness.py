"""Readiness that does not flap: a dependency that was reachable is reported down only after
``to_down`` failed checks in a row, and one that went down is reported up again only after ``to_up``
successful checks in a row. The first success after start counts at once, so a starting service is
ready as soon as it can be. Pure: the caller does the checking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Hysteresis:
    to_down: int = 2
    to_up: int = 2
    up: bool = False
    ever_up: bool = False
    _streak: int = field(default=0, repr=False)

    def observe(self, reachable: bool) -> bool:
        """Record one check's result; returns whether the dependency is reported reachable now."""
        if reachable == self.up:
            self._streak = 0
            return self.up
        self._streak += 1
        needed = self.to_down if self.up else (self.to_up if self.ever_up else 1)
        if self._streak >= needed:
            self.up, self._streak = reachable, 0
            self.ever_up = self.ever_up or reachable
        return self.up
