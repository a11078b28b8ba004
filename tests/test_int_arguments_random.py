"""Random functions of int arguments (arithmetic, branches, tensor operands, list indexing)
compiled with symbolic ints (NOTE (int arguments)) against eager, over random sequences
of values: a guard that misses a branch, or a value baked into a program, shows up as a
difference."""
from __future__ import annotations

import random

import numpy as np
import pytest

import tracegrad as torch

TABLE = [torch.full((4,), float(k)) for k in range(8)]


def _expr(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["i", "j", str(rng.randint(-3, 7))])
    a, b = _expr(rng, depth - 1), _expr(rng, depth - 1)
    op = rng.choice(["+", "-", "*", "//", "%", "max", "min", "abs"])
    if op in ("//", "%"):
        return f"({a}) {op} {rng.randint(1, 5)}"
    if op in ("max", "min"):
        return f"{op}({a}, {b})"
    if op == "abs":
        return f"abs({a})"
    return f"({a}) {op} ({b})"


def _function(rng: random.Random):
    lines = ["def f(x, i, j):", f"    a = {_expr(rng, 2)}", f"    b = {_expr(rng, 2)}"]
    cmp = rng.choice(["<", "<=", ">", ">=", "==", "!="])
    lines.append(f"    if a {cmp} b:")
    lines.append("        y = x * a - b")
    lines.append("    else:")
    lines.append(f"        y = x + b * {rng.choice(['1.5', 'a', '(a % 3)'])}")
    if rng.random() < 0.3:
        lines.append("    y = y + TABLE[a % 8]")   # an index: specialised per value
    if rng.random() < 0.3:
        lines.append("    y = y * (0.25 / (abs(b) + 1))")
    lines.append("    return y")
    source = "\n".join(lines)
    scope = {"TABLE": TABLE, "torch": torch}
    exec(compile(source, "<random int function>", "exec"), scope)
    return scope["f"], source


@pytest.mark.parametrize("seed", range(12))
def test_random_int_functions_equal_eager(seed):
    rng = random.Random(seed)
    f, source = _function(rng)
    x = torch.tensor(np.random.default_rng(seed).standard_normal(4).astype(np.float32))
    dynamic = rng.choice([None, True])
    cf = torch.compile(f, dynamic=dynamic)
    for _ in range(25):
        i, j = rng.randint(-4, 12), rng.choice([0, 1, rng.randint(-4, 12)])
        want = f(x, i, j)
        got = cf(x, i, j)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=f"{source}\ni={i}, j={j}, dynamic={dynamic}")
