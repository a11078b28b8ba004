"""``ReduceOp``: how a collective combines the ranks' values."""
from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """PyTorch's reduction names. AVG is SUM divided by the world size afterwards."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self) -> str:
        return f"ReduceOp.{self.name}"


def mpi_op(op, mpi, what: str):
    """The MPI operation for ``op`` (AVG reduces with MPI.SUM)."""
    if isinstance(op, str):
        try:
            op = ReduceOp[op.upper()]
        except KeyError:
            op = None
    table = {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.PRODUCT: mpi.PROD,
             ReduceOp.MIN: mpi.MIN, ReduceOp.MAX: mpi.MAX}
    if op not in table:
        raise ValueError(f"{what}: unknown reduce op {op!r}; expected one of "
                         f"{', '.join('ReduceOp.' + o.name for o in ReduceOp)}")
    return table[op]
