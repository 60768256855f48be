"""The event-line splitter's cost against its input's size (issue #13: a VM writing a huge
line must not cost the shared operator quadratic time).

Feeds a line of N bytes in 4 KiB chunks (what a slow writer produces), then a stream of
many short records in one chunk, for N and 4N; a linear splitter takes about 4 times as
long for 4N, a quadratic one about 16 times. Prints the ratios; run:

    python -m bench.framing
"""

from __future__ import annotations

import time

from reef_operator.agent.framing import LineSplitter

CHUNK = 4096


def _long_line(size: int) -> float:
    data = b"x" * CHUNK
    splitter = LineSplitter(limit=size * 2)
    start = time.perf_counter()
    for _ in range(size // CHUNK):
        for _ in splitter.feed(data):
            pass
    for _ in splitter.feed(b"\n"):
        pass
    return time.perf_counter() - start


def _many_records(size: int) -> float:
    data = b'{"n":1}\n' * (size // 8)
    start = time.perf_counter()
    for _ in LineSplitter().feed(data):
        pass
    return time.perf_counter() - start


def main() -> None:
    for name, run in (("one long line in 4 KiB chunks", _long_line),
                      ("short records in one chunk", _many_records)):
        small, large = run(4 << 20), run(16 << 20)
        print(f"{name}: 4 MiB {small:.3f}s, 16 MiB {large:.3f}s, "
              f"ratio {large / small:.1f} (linear: about 4)")


if __name__ == "__main__":
    main()
