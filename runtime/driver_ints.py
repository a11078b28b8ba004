"""How a generated driver writes its integers: baked in, or read from its size table.

NOTE (size table): a driver's integers (a kernel's outer extent, a gemm's sizes and
leading dimensions, byte offsets, a native index loop's or a copy table's sizes) are
literals in a specialised program's driver. The programs of a symbolic group (one fit
serves every size of ``s0``, ``tracegrad.compiler.dynamic``) read every one of them at
run time from the driver's own table ``fns``, after its function addresses: the
driver's text then holds no size, so one compiled driver serves every size and a new
size compiles nothing. The loads cost nothing measurable (``runtime.driver``'s module
doc).

``Spell`` is the one interface: ``spell(value, name)`` returns the lines that compute the
value (none for a literal) and the text that stands for it in an ``i64`` operand.

>>> literal(8, "n")
([], '8')
>>> table = SizeTable(base=3)
>>> lines, ref = table(8, "n")
>>> ref, table.values, lines[0]
('%n', [8], '  %np = getelementptr i64, ptr %fns, i64 3')
"""
from __future__ import annotations

from typing import Callable

Spell = Callable[[int, str], tuple[list[str], str]]


def literal(value: int, name: str) -> tuple[list[str], str]:
    """A specialised driver's integer: its decimal text."""
    return [], str(int(value))


class SizeTable:
    """A symbolic driver's integers: each one a load from ``fns[base + k]``; ``values``
    collects them in order, for the program to append to its ``fns`` table."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.values: list[int] = []

    def __call__(self, value: int, name: str) -> tuple[list[str], str]:
        slot = self.base + len(self.values)
        self.values.append(int(value))
        return [f"  %{name}p = getelementptr i64, ptr %fns, i64 {slot}",
                f"  %{name} = load i64, ptr %{name}p"], f"%{name}"
