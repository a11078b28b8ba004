"""Found by fuzz5: a number or tensor the compiled function reads from a dict (or list)
held by a global or closure variable was baked into the trace, as the guards compared
the container by identity only. Each read is now guarded alone (NOTE (access paths) in
compiler/access_paths.py); tests/test_access_paths.py covers the kinds of path."""
from __future__ import annotations

import tracegrad as torch


def test_a_number_in_a_closure_dict_is_read_again():
    cfg = {"scale": 2.0}
    f = torch.compile(lambda x: (x * cfg["scale"]).sum())
    x = torch.ones(3)
    assert float(f(x)) == 6.0
    cfg["scale"] = 3.0
    assert float(f(x)) == 9.0


def test_a_tensor_rebound_in_a_closure_dict_is_read_again():
    weights = {"w": torch.ones(3)}
    f = torch.compile(lambda x: (x * weights["w"]).sum())
    x = torch.ones(3)
    assert float(f(x)) == 3.0
    weights["w"] = torch.full((3,), 2.0)
    assert float(f(x)) == 6.0
