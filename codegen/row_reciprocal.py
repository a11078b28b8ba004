"""NOTE (row reciprocal): softmax's x / sum divides a whole row by one value. A vector
division costs ~10x a multiply on AVX-512, so the row loop multiplies by 1/sum, which LLVM
hoists out of the loop. The result may differ from x / sum in the last bit (what PyTorch's
kernels do too).

The choice is made from the graph (a divisor made of constants and the group's reductions,
a numerator that is not), never from loop depth: a 1-column row's reduction loop folds the
column index, so under the old depth test the same node lowered there stayed a division
while the store loop multiplied by the reciprocal, and the two rounded apart
(log_softmax(x / 3) over one column gave -6e-8, h - h.amax(-1) 2.4e-7, instead of 0).
Dividing by a constant exactly as eager does would cost ~15% in a 256x1024 float32
softmax(x / 3) (60 -> 71 us, load 4.5), so constants keep the reciprocal too."""
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


def multiplies_by_reciprocal(g: Graph, group: Group, edges_of, edges: list[Edge]) -> bool:
    """Whether a float DIV reading ``edges`` is lowered as numerator * RECIP(divisor)."""
    return (row_value(g, group, edges_of, edges[1].src)
            and not row_value(g, group, edges_of, edges[0].src))
