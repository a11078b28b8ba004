"""How a program calls one of its generated drivers (``runtime.driver``), and how several
programs' drivers compile as one LLVM module (``link_together``)."""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from .driver import DRIVER_NAME
from .llvm_jit import CpuKernel, compile_llvm_many


class _DriverCall:
    """A run of native steps: one call of a generated driver (``runtime.driver``)."""

    __slots__ = ("kernel", "fns", "fns_address", "refresh", "status", "checked")

    def __init__(self, kernel: CpuKernel, fns: np.ndarray, refresh: bool, status: int,
                 checked: dict[int, Any]) -> None:
        self.kernel = kernel
        self.fns = fns          # kept alive: the driver reads it by address
        self.fns_address = fns.ctypes.data if fns.size else 0
        self.refresh = refresh  # copy the per-call addresses into the table first
        self.status = status    # the status word's position in the table
        self.checked = checked  # status code -> the NumPy form of a native index step

    def run(self, arrays: list, addrs: list, table: tuple[np.ndarray, int]) -> None:
        if self.refresh:
            table[0][:] = addrs
        self.kernel.cfunc(0, 0, self.fns_address, table[1])
        if self.checked and table[0][self.status]:
            # NOTE (bad indices, runtime.native_index): the driver stopped at a bad index;
            # NumPy's form of that step raises eager mode's error
            code = int(table[0][self.status])
            table[0][self.status] = 0
            self.checked[code].run(arrays, addrs, table)
            raise RuntimeError(f"native {self.checked[code].step.node.op.name} flagged an "
                               "index that NumPy accepts")


class Unlinked(Protocol):
    """A ``CompiledProgram`` made with ``link=False``."""

    def driver_sources(self) -> list[str]: ...

    def link(self) -> None: ...


# NOTE (one driver module per entry): a compiled function's forward and backward programs
# each compiled their drivers as an O0 module of its own, ~1.2-1.6 ms of fixed LLVM work
# each on the quiet 2-core VM whatever the size (the seed step: two). Made with
# ``link=False``, they hand their drivers' sources here first: those no cache holds
# compile as one module, and each program's ``link`` then finds its drivers in memory.
def link_together(programs: Sequence[Unlinked]) -> None:
    """Compile ``programs``' drivers as one module, then link each program."""
    sources = list(dict.fromkeys(s for p in programs for s in p.driver_sources()))
    if len(sources) > 1:
        try:
            compile_llvm_many(sources, DRIVER_NAME, opt_level=0)
        except Exception:  # noqa: BLE001 - each program's link names the failure
            pass
    for program in programs:
        program.link()
