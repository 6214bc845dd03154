"""Runs exported before they are pruned: one JSON Lines file per pruned batch of a tenant's runs
(every event of each run, in seq order, as the run's export in the API gives it), written under a
temporary name, flushed to disk, then renamed and the folder flushed: once ``write`` returns, the file
survives a crash, and only then are the runs deleted."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ExportFolder:
    def __init__(self, root: Path) -> None:
        self._root = root

    async def write(self, tenant_id: str, first_run: UUID, at: datetime, lines: Sequence[bytes]) -> Path:
        """The file written for these lines (``<root>/<tenant>/<time>-<first run>.jsonl``)."""
        return await asyncio.to_thread(self._write, tenant_id, first_run, at, lines)

    def _write(self, tenant_id: str, first_run: UUID, at: datetime, lines: Sequence[bytes]) -> Path:
        folder = self._root / _UNSAFE.sub("_", tenant_id)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{first_run}.jsonl"
        partial = final.with_suffix(".jsonl.partial")
        with open(partial, "wb") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())
        partial.rename(final)
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return final
