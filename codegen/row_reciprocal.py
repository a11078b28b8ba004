"""NOTE (row reciprocal): softmax's x / sum divides a whole row by one value. A vector
division costs ~10x a multiply on AVX-512, so the row loop multiplies by 1/sum, which LLVM
hoists out of the loop. The result may differ from x / sum in the last bit (what PyTorch's
kernels do too).

Only a divisor computed from one of the group's own reductions (and constants) is so
treated: ``x / 3``, ``x / 7.0`` or ``x / i`` (an int argument) divide exactly, as eager
does (they were 1 ulp off eager in 15-50% of elements; exact costs ~15% in a 256x1024
float32 softmax(x / 3), 60 -> 71 us at load 4.5, and a wrong bit outranks that).

The choice is made from the graph, never from loop depth: a 1-column row's reduction loop
folds the column index, so under the old depth test the same node lowered there stayed a
division while the store loop multiplied by the reciprocal, and the two rounded apart
(log_softmax(x / 3) over one column gave -6e-8, h - h.amax(-1) 2.4e-7, instead of 0)."""
from __future__ import annotations

from typing import Callable

from .fuse import Edge, Group
from .graph import Graph
from .ops import MOVEMENT, REDUCE, Op


def _row_kind(g: Graph, group: Group, edges_of: Callable[..., list[Edge]], node_id: int,
              memo: dict[int, bool | None]) -> bool | None:
    """None where ``node_id`` is not one value per row of ``group``; else whether it reads
    one of ``group``'s reductions (True) or only constants (False). One walk, each node
    once (``memo``): a divisor's expression may share subexpressions."""
    if node_id in memo:
        return memo[node_id]
    node = g.node(node_id)
    kind: bool | None
    if node.op is Op.CONST:
        kind = False
    elif node_id not in group.nodes or node.op in MOVEMENT:
        kind = None
    elif node.op in REDUCE:
        kind = True
    else:
        kinds = [_row_kind(g, group, edges_of, e.src, memo) for e in edges_of(node)]
        kind = None if None in kinds else any(kinds)
    memo[node_id] = kind
    return kind


def multiplies_by_reciprocal(g: Graph, group: Group, edges_of, edges: list[Edge]) -> bool:
    """Whether a float DIV reading ``edges`` is lowered as numerator * RECIP(divisor): a
    divisor computed from the group's reductions (and constants), a numerator that is not
    one value per row."""
    memo: dict[int, bool | None] = {}
    return (_row_kind(g, group, edges_of, edges[1].src, memo) is True
            and _row_kind(g, group, edges_of, edges[0].src, memo) is None)
