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


def row_value(g: Graph, group: Group, edges_of: Callable[..., list[Edge]], node_id: int) -> bool:
    """Whether ``node_id`` is one value per row of ``group``: a constant, one of its
    reductions, or elementwise ops of such values."""
    node = g.node(node_id)
    if node.op is Op.CONST or node.op in REDUCE and node_id in group.nodes:
        return True
    if node_id not in group.nodes or node.op in MOVEMENT:
        return False
    return all(row_value(g, group, edges_of, e.src) for e in edges_of(node))


def reads_reduction(g: Graph, group: Group, edges_of: Callable[..., list[Edge]],
                    node_id: int) -> bool:
    """Whether ``node_id`` is one of ``group``'s reductions or computed in it from one."""
    node = g.node(node_id)
    if node_id not in group.nodes or node.op in MOVEMENT:
        return False
    return node.op in REDUCE or any(reads_reduction(g, group, edges_of, e.src)
                                    for e in edges_of(node))


def multiplies_by_reciprocal(g: Graph, group: Group, edges_of, edges: list[Edge]) -> bool:
    """Whether a float DIV reading ``edges`` is lowered as numerator * RECIP(divisor)."""
    divisor, numerator = edges[1].src, edges[0].src
    return (row_value(g, group, edges_of, divisor)
            and reads_reduction(g, group, edges_of, divisor)
            and not row_value(g, group, edges_of, numerator))
