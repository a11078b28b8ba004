"""``codegen.graph.shape_numel``: the element count the planner and tracer ask for, with
``math.prod`` on plain ints (fast) and NumPy for anything else, agreeing with ``np.prod``."""
import numpy as np

from tracegrad.codegen.graph import Graph, shape_numel
from tracegrad.codegen.ops import Op


def test_shape_numel_agrees_with_numpy_on_every_kind_of_shape():
    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(int(d) for d in rng.integers(0, 7, rng.integers(0, 5)))
        want = int(np.prod(shape, dtype=np.int64))
        got = shape_numel(shape)
        assert got == want and type(got) is int, shape
        mixed = tuple(np.int64(d) if k % 2 else d for k, d in enumerate(shape))
        assert shape_numel(mixed) == want and type(shape_numel(mixed)) is int, mixed
    assert shape_numel(()) == 1 and shape_numel([2, 3]) == 6


def test_graph_nodes_count_their_elements():
    g = Graph()
    x = g.add(Op.INPUT, (), (4, 0, 3), "float32", index=0)
    s = g.add(Op.INPUT, (), (), "float32", index=1)
    assert (x.numel, s.numel) == (0, 1)
