"""Hypothesis: the random batched graphs of test_symbolic_random_graphs, compiled with a
symbolic batch size and called at random sizes with ``CHECK_INSTANCES`` off, so that the
sizes whose guards hold really run without a retrace: symbolic == eager at every size,
values and gradients; and the sizes the guards served were traced no further."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import tracegrad as torch
from test_compile_random_graphs import _close
from test_symbolic_random_graphs import batched_programs, program_and_inputs


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batched_programs(), st.lists(st.integers(2, 300), min_size=4, max_size=6, unique=True),
       st.integers(0, 2**31 - 1))
def test_sizes_served_on_guards_equal_eager(program, sizes, seed):
    rest, extra_inputs, steps = program
    note(f"rest {rest}, sizes {sizes}: " + ", ".join(label for label, _ in steps))
    fn, make_inputs = program_and_inputs(program, np.random.default_rng(seed))
    traces = [0]

    def counted(*xs):
        traces[0] += 1
        return fn(*xs)
    symbolic = torch.compile(counted, dynamic=True, fullgraph=True)
    served_before = 0
    for n in sizes:
        arrays = make_inputs(n)
        results = []
        before = traces[0]
        for f in (symbolic, fn):
            xs = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
            out = f(*xs)
            out.sum().backward()
            results.append((out, xs[0].grad))
        _close(results[0][0], results[1][0], f"symbolic output at B={n}")
        _close(results[0][1], results[1][1], f"symbolic gradient at B={n}")
        groups = list(symbolic._groups.values())
        served = sum(g.served_without_retrace for g in groups)
        if served > served_before:      # this size came from the guards: no trace at all
            assert traces[0] == before, f"B={n} served on guards yet traced"
            event("served on guards")
        served_before = served
    note(str(symbolic.cache_info()))
