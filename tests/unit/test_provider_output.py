"""A command's output is read with a bound (providers/output.py): the rest is drained
and discarded, and a marker says how much was cut."""

from __future__ import annotations

from reef_operator.providers.output import bounded


class _Stream:
    def __init__(self, total: int, chunk: int = 1000) -> None:
        self.left, self.chunk = total, chunk

    async def read(self, n: int = -1, /) -> bytes:
        size = min(self.left, self.chunk, n)
        self.left -= size
        return b"x" * size


async def test_output_beyond_the_bound_is_drained_cut_and_marked() -> None:
    stream = _Stream(1_000_000)
    text = await bounded(stream, limit=2500)
    assert stream.left == 0                     # read to the end: the writer never blocks
    assert text == "x" * 2500 + "\n[output cut: 997,500 bytes beyond the 2,500-byte bound]\n"


async def test_output_within_the_bound_is_whole() -> None:
    assert await bounded(_Stream(2500), limit=2500) == "x" * 2500
