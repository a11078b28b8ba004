"""Shared by tests/test_fuzz6_*: random small programs over dtypes, special values and
Python scalars, written once against the torch API so the same program runs on PyTorch
and on tracegrad (``mod`` is either module), and the comparisons between the runs."""
from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float64", "int32", "int64", "bool")
FLOATS = ("float32", "float64")

# special values per kind: the ones a kernel or a NumPy shortcut gets wrong
FLOAT_SPECIALS = (np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e38, 1e-40, 3.0, -2.5, 0.5)
INT_SPECIALS = {"int32": (0, 1, -1, 7, -7, 3, -3, 2**31 - 1, -2**31),
                "int64": (0, 1, -1, 7, -7, 3, -3, 2**63 - 1, -2**63)}
SCALARS = (2, -3, 0, 2.5, -0.0, float("nan"), float("inf"), True, False)
SHAPES = ((), (3,), (1,), (0,), (2, 3), (1, 3), (2, 1), (2, 0), (3, 1, 2))

UNARY = {
    "neg": lambda m, x: -x, "abs": lambda m, x: m.abs(x), "relu": lambda m, x: m.relu(x),
    "exp": lambda m, x: m.exp(x), "log": lambda m, x: m.log(x),
    "sqrt": lambda m, x: m.sqrt(x), "sign": lambda m, x: m.sign(x),
    "floor": lambda m, x: m.floor(x), "ceil": lambda m, x: m.ceil(x),
    "trunc": lambda m, x: m.trunc(x), "round": lambda m, x: m.round(x),
    "sigmoid": lambda m, x: m.sigmoid(x), "tanh": lambda m, x: m.tanh(x),
    "square": lambda m, x: m.square(x), "not": lambda m, x: m.logical_not(x),
    "isnan": lambda m, x: m.isnan(x), "invert": lambda m, x: ~x,
    "float": lambda m, x: x.float(), "double": lambda m, x: x.double(),
    "long": lambda m, x: x.long(), "int": lambda m, x: x.int(), "bool": lambda m, x: x.bool(),
    "clamp": lambda m, x: m.clamp(x, -2, 2.5), "clamp_min": lambda m, x: m.clamp(x, min=0),
    "clamp_max": lambda m, x: x.clamp(max=1),
    "sum": lambda m, x: x.sum(), "sum0": lambda m, x: x.sum(0) if x.dim() else x.sum(),
    "mean": lambda m, x: x.mean(), "prod": lambda m, x: x.prod(),
    "amax": lambda m, x: x.amax(), "amin_k": lambda m, x: x.amin(-1, keepdim=True),
    "max": lambda m, x: x.max(), "min": lambda m, x: x.min(),
    "argmax": lambda m, x: x.argmax(), "argmin_d": lambda m, x: x.argmin(-1),
    "any": lambda m, x: x.any(), "all": lambda m, x: x.all(),
    "cumsum": lambda m, x: m.cumsum(x, -1) if x.dim() else m.cumsum(x, 0),
    "softmax": lambda m, x: m.softmax(x, -1), "log_softmax": lambda m, x: m.log_softmax(x, -1),
    "first": lambda m, x: x[0], "last_col": lambda m, x: x[..., -1],
    "step": lambda m, x: x[::2], "flip_idx": lambda m, x: x[m.tensor([0, 0])],
    "t": lambda m, x: x.t() if x.dim() <= 2 else x.transpose(0, 1),
    "gram": lambda m, x: x @ x.t() if x.dim() == 2 else x @ x,
}

BINARY = {
    "add": lambda m, a, b: a + b, "sub": lambda m, a, b: a - b,
    "mul": lambda m, a, b: a * b, "div": lambda m, a, b: a / b,
    "floordiv": lambda m, a, b: a // b, "mod": lambda m, a, b: a % b,
    "pow": lambda m, a, b: a ** b, "rsub": lambda m, a, b: b - a,
    "rdiv": lambda m, a, b: b / a, "rfloordiv": lambda m, a, b: b // a,
    "rmod": lambda m, a, b: b % a,
    "maximum": lambda m, a, b: m.maximum(a, b), "minimum": lambda m, a, b: m.minimum(a, b),
    "eq": lambda m, a, b: a == b, "lt": lambda m, a, b: a < b, "ge": lambda m, a, b: a >= b,
    "ne": lambda m, a, b: a != b, "and": lambda m, a, b: a & b, "or": lambda m, a, b: a | b,
    "xor": lambda m, a, b: a ^ b,
    "where_pos": lambda m, a, b: m.where(a > 0, a, b),
    "where_cond": lambda m, a, b: m.where(a.bool(), b, 1),
    "clamp_t": lambda m, a, b: m.clamp(a, min=b),
    "matmul": lambda m, a, b: a @ b,
    "floor_divide": lambda m, a, b: m.floor_divide(a, b),
    "remainder": lambda m, a, b: m.remainder(a, b),
    "fmod": lambda m, a, b: m.fmod(a, b),
}


def random_values(rng, dtype: str, shape) -> np.ndarray:
    """Mostly special values of ``dtype``, some ordinary ones."""
    n = int(np.prod(shape))
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    if dtype in FLOATS:
        pool = np.array(FLOAT_SPECIALS + tuple(np.round(rng.standard_normal(6) * 4, 2)))
    else:
        pool = np.array(INT_SPECIALS[dtype] + tuple(rng.integers(-9, 10, 6)), dtype=dtype)
    return rng.choice(pool, n).astype(dtype).reshape(shape)


def random_program(rng, n_inputs: int, n_ops: int):
    """``[(kind, op name, operand indices or scalars)]`` over a pool that starts with the
    inputs and grows by each op's result."""
    steps = []
    for k in range(n_ops):
        pool = n_inputs + k
        if rng.random() < 0.4:
            steps.append(("unary", str(rng.choice(sorted(UNARY))), int(rng.integers(pool))))
            continue
        a = int(rng.integers(pool))
        b = (SCALARS[rng.integers(len(SCALARS))] if rng.random() < 0.4
             else int(rng.integers(pool)))
        steps.append(("binary", str(rng.choice(sorted(BINARY))), (a, b)))
    return steps


def random_inputs(rng, n: int):
    """``n`` (numpy value, dtype) pairs whose shapes mostly broadcast together."""
    base = SHAPES[rng.integers(len(SHAPES))]
    out = []
    for _ in range(n):
        shape = base if rng.random() < 0.6 else SHAPES[rng.integers(len(SHAPES))]
        dtype = DTYPES[rng.integers(len(DTYPES))]
        out.append(random_values(rng, dtype, shape))
    return out


def run_step(mod, pool, step):
    kind, name, args = step
    if kind == "unary":
        return UNARY[name](mod, pool[args])
    a, b = args
    other = pool[b] if isinstance(b, int) and not isinstance(b, bool) else b
    return BINARY[name](mod, pool[a], other)


def run_program(mod, steps, inputs, catch: bool = True):
    """The program's values (all results) with ``mod`` as the library; with ``catch``, an
    op that raises leaves its exception in its slot and ends the program."""
    pool = list(inputs)
    for step in steps:
        try:
            pool.append(run_step(mod, pool, step))
        except Exception as e:   # both libraries' errors are compared
            if not catch:
                raise
            pool.append(e)
            break
    return pool[len(inputs):]


def describe_program(steps, inputs) -> str:
    ins = ", ".join(f"{v.dtype}{list(v.shape)}={v.ravel()[:6].tolist()}" for v in inputs)
    return f"inputs: {ins}\nsteps: {steps}"


def as_numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "").replace("tracegrad.", "")


# ops that add up many values: their rounding depends on the order of the additions
SUMMING = {"sum", "sum0", "mean", "prod", "cumsum", "softmax", "log_softmax", "gram",
           "matmul"}


def summing_atol(step, pool) -> float:
    """How far two orders of summation may land apart for ``step`` over ``pool``'s
    values: eps * count * the product of the operands' largest finite magnitudes (inf
    where an order may overflow: [1e38, 1e38, -1e38] sums to inf or to 1e38)."""
    kind, name, args = step
    if name not in SUMMING:
        return 0.0
    operands = [pool[args]] if kind == "unary" else [
        pool[a] for a in args if isinstance(a, int) and not isinstance(a, bool)]
    arrays = [as_numpy(v) for v in operands]
    if not arrays or arrays[0].dtype.kind != "f":
        return 0.0
    finfo = np.finfo(arrays[0].dtype)
    count = float(max(v.size for v in arrays))
    scale = 1.0
    for v in arrays:
        finite = np.abs(v[np.isfinite(v)]).astype(np.float64)
        if name == "prod":   # a partial product may overflow in one order, not another
            with np.errstate(over="ignore"):
                scale *= float(np.prod(np.maximum(finite, 1.0)))
        else:
            scale *= float(finite.max()) if finite.size else 1.0
    return np.inf if scale * count * 2 > finfo.max else count * float(finfo.eps) * 4 * scale


def compare_values(got, want, what: str, float_rtol: float = 0.0,
                   float_atol: float = 0.0) -> None:
    """``got`` (tracegrad) matches ``want``: dtype, shape, NaN positions, values (ints and
    bools bitwise; floats to ``float_rtol`` and ``float_atol``, signed zeros aside;
    ``float_atol`` inf leaves float values unchecked)."""
    g, w = as_numpy(got), as_numpy(want)
    assert dtype_name(got) == dtype_name(want), f"{what}: dtype {got.dtype} != {want.dtype}"
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    if g.dtype.kind != "f":
        np.testing.assert_array_equal(g, w, err_msg=what)
        return
    if float_atol == np.inf:
        return
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions")
    # below the smallest normal number a kernel may keep a subnormal NumPy flushed
    # (sigmoid(-92) in float32: 1e-40 compiled, 0 eager)
    atol = max(float_atol, float(np.finfo(g.dtype).tiny))
    np.testing.assert_allclose(g, w, rtol=float_rtol, atol=atol, err_msg=what)
