"""A process gives freed heap memory back to the system (glibc's malloc_trim, every
MILLRACE_MEMORY_TRIM_SECONDS): after a burst whose memory was freed but is held by a few survivors,
the resident size drops once trimmed."""

from __future__ import annotations

import subprocess
import sys

from millrace_common.platform.memory import heap_trimmer, trimming_loop

BURST = """
import gc
from millrace_common.platform.memory import heap_trimmer

def resident_mb():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20

# 200 MB of 4 KB blocks (above pymalloc's limit, so from the C heap), every 100th kept: the heap's top
# stays in use, so only a trim of the whole heap can give the pages in between back.
blocks = [bytearray(4096) for _ in range(50_000)]
survivors = blocks[::100]
del blocks
gc.collect()
before = resident_mb()
heap_trimmer()()
print(before, resident_mb())
"""


def test_a_trim_gives_freed_heap_pages_back() -> None:
    answer = subprocess.run([sys.executable, "-c", BURST], capture_output=True, text=True, check=True)
    before, after = map(float, answer.stdout.split())
    assert before - after > 100, (before, after)


def test_the_loop_is_off_at_zero() -> None:
    assert heap_trimmer() is not None  # this machine's C library is glibc
    assert trimming_loop(0) is None
    assert trimming_loop(30) is not None
