"""Compiled functions read again what they read through Python containers and objects
(NOTE (access paths) in compiler/access_paths.py): each kind of path, a number and a
tensor rebound in each, compared with eager after each change; a retrace exactly when a
read item changes, none when an unread item changes or an unread list grows."""
from __future__ import annotations

import dataclasses
import types

import numpy as np

import tracegrad as torch
from tracegrad import nn

CFG = {"scale": 2.0, "unused": 1.0, "w": torch.ones(3)}
LOG: list = []


def _check(f, eager, x, change, misses):
    """``f(x)`` equals ``eager(x)`` before and after ``change()``, with ``misses`` traces
    in all (``change`` may be a list of changes, each checked)."""
    for step in [None] + (change if isinstance(change, list) else [change]):
        if step is not None:
            step()
        np.testing.assert_allclose(f(x).numpy(), eager(x).numpy(), rtol=1e-6)
        np.testing.assert_allclose(f(x).numpy(), eager(x).numpy(), rtol=1e-6)
    compiled = getattr(f, "func", f)   # a method compiled in its class: a partial
    assert compiled.cache_info().misses == misses, compiled.cache_info()


def _global_dict_item(x):
    return x * CFG["scale"] + CFG["w"]


def test_a_global_dict_item_number_and_tensor():
    f = torch.compile(_global_dict_item)
    before = dict(CFG)
    try:
        _check(f, _global_dict_item, torch.arange(3.0),
               [lambda: CFG.update(scale=3.0), lambda: CFG.update(w=torch.full((3,), 4.0))],
               misses=3)
        CFG["unused"] = 7.0   # not read: no retrace
        CFG["new key"] = 1
        _check(f, _global_dict_item, torch.arange(3.0), [], misses=3)
    finally:
        CFG.clear()
        CFG.update(before)


def test_a_closure_list_item():
    items = [torch.ones(3), 2.0, "unread"]
    f = torch.compile(lambda x: x * items[0] * items[1])

    def eager(x):
        return x * items[0] * items[1]
    _check(f, eager, torch.arange(3.0),
           [lambda: items.__setitem__(1, 5.0),
            lambda: items.__setitem__(0, torch.full((3,), 3.0))], misses=3)
    items[2] = "changed, unread"
    items.append(torch.zeros(3))   # the function reads items 0 and 1 only
    _check(f, eager, torch.arange(3.0), [], misses=3)


def test_a_negative_index_follows_the_list_it_reads():
    items = [1.0, 2.0]
    f = torch.compile(lambda x: x * items[-1])
    _check(f, lambda x: x * items[-1], torch.ones(2), lambda: items.append(5.0), misses=2)


def test_a_nested_dict_item():
    cfg = {"a": {"b": 2.0, "c": 9.0}}
    f = torch.compile(lambda x: x * cfg["a"]["b"])

    def eager(x):
        return x * cfg["a"]["b"]
    _check(f, eager, torch.ones(2),
           [lambda: cfg["a"].__setitem__("b", 3.0),
            lambda: cfg.__setitem__("a", {"b": 4.0})], misses=3)
    cfg["a"]["c"] = 0.0
    _check(f, eager, torch.ones(2), [], misses=3)


class _Config:
    def __init__(self):
        self.scale = 2.0
        self.other = 1.0


class _Model:
    """A plain class whose ``self`` holds tensors (no nn.Module)."""

    def __init__(self):
        self.w = torch.ones(3)
        self.cfg = _Config()

    def __call__(self, x):
        return (x * self.w) * self.cfg.scale


def test_an_object_attribute_chain_through_a_method():
    model = _Model()
    f = torch.compile(model.__call__)
    x = torch.arange(3.0)
    _check(f, model, x, [lambda: setattr(model.cfg, "scale", 3.0),
                         lambda: setattr(model, "w", torch.full((3,), 2.0)),
                         lambda: setattr(model, "cfg", _Config())], misses=4)
    model.cfg.other = 5.0
    _check(f, model, x, [], misses=4)


def test_a_plain_object_called_from_a_compiled_function():
    model = _Model()
    f = torch.compile(lambda x: model(x).sum())
    x = torch.arange(3.0)
    _check(f, lambda x: model(x).sum(), x,
           [lambda: setattr(model, "w", torch.full((3,), 5.0)),
            lambda: setattr(model.cfg, "scale", -1.0)], misses=3)


def test_a_tuple_item():
    pair = (torch.ones(2), 3.0)
    holder = types.SimpleNamespace(pair=pair)
    f = torch.compile(lambda x: x * holder.pair[0] + holder.pair[1])

    def eager(x):
        return x * holder.pair[0] + holder.pair[1]
    _check(f, eager, torch.ones(2),
           [lambda: setattr(holder, "pair", (torch.full((2,), 2.0), 3.0)),
            lambda: setattr(holder, "pair", (holder.pair[0], 7.0))], misses=3)


@dataclasses.dataclass
class _Hyper:
    lr: float = 0.5
    decay: float = 0.0
    weight: object = None


def test_a_dataclass_field_and_a_simple_namespace():
    hyper = _Hyper(weight=torch.ones(2))
    ns = types.SimpleNamespace(lr=2.0)
    f = torch.compile(lambda x: x * hyper.lr * ns.lr + hyper.weight)

    def eager(x):
        return x * hyper.lr * ns.lr + hyper.weight
    _check(f, eager, torch.ones(2),
           [lambda: setattr(hyper, "lr", 0.25), lambda: setattr(ns, "lr", 4.0),
            lambda: setattr(hyper, "weight", torch.full((2,), 3.0))], misses=4)
    hyper.decay = 1.0   # unread
    _check(f, eager, torch.ones(2), [], misses=4)


def test_a_list_the_function_appends_to_does_not_retrace():
    def step(x):
        y = (x * CFG["scale"]).sum()
        LOG.append(1)
        return y
    f = torch.compile(step)
    for _ in range(4):
        f(torch.ones(3))
    assert f.cache_info().misses == 1
    del LOG[:]


def test_an_iterated_list_is_guarded_by_its_contents():
    weights = [torch.ones(2), torch.full((2,), 2.0)]

    def total(x):
        out = x
        for w in weights:
            out = out + w
        return out
    f = torch.compile(total)
    _check(f, total, torch.zeros(2),
           [lambda: weights.append(torch.full((2,), 10.0)),
            lambda: weights.__setitem__(0, torch.full((2,), -1.0))], misses=3)


def test_a_dict_get_and_a_length():
    opts = {"scale": 2.0}
    ws = [1.0, 2.0]
    f = torch.compile(lambda x: x * opts.get("scale", 1.0) * len(ws))

    def eager(x):
        return x * opts.get("scale", 1.0) * len(ws)
    _check(f, eager, torch.ones(2),
           [lambda: opts.__setitem__("scale", 5.0), lambda: opts.pop("scale"),
            lambda: ws.append(3.0)], misses=4)


def test_a_global_read_in_a_called_helper():
    f = torch.compile(lambda x: _helper(x))
    before = CFG["scale"]
    try:
        _check(f, _helper, torch.ones(2), lambda: CFG.__setitem__("scale", 6.0), misses=2)
    finally:
        CFG["scale"] = before


def _helper(x):
    return x * CFG["scale"]


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.opts = types.SimpleNamespace(scale=2.0, table=torch.ones(3))

    def forward(self, x):
        return self.lin(x) * self.opts.scale + self.opts.table


def test_a_plain_object_held_by_a_module():
    m = _Scaled()
    f = torch.compile(m)
    x = torch.randn(2, 3)
    with torch.no_grad():
        _check(f, m, x, [lambda: setattr(m.opts, "scale", 3.0),
                         lambda: setattr(m.opts, "table", torch.zeros(3))], misses=3)


def test_what_the_user_sees_is_the_real_object():
    cfg = {"scale": 2.0}
    seen = []

    def f(x):
        seen.append((type(cfg), isinstance(cfg, dict)))
        return x * cfg["scale"]
    torch.compile(f)(torch.ones(2))
    assert seen == [(dict, True)]


def test_a_container_the_function_makes_is_not_guarded():
    def f(x):
        parts = {"a": 1.0}
        parts["b"] = 2.0
        scale = sum(parts.values())
        parts["c"] = 3.0   # changed after it was read: no guard may hold it
        return x * scale
    c = torch.compile(f)
    for _ in range(3):
        np.testing.assert_allclose(c(torch.ones(2)).numpy(), f(torch.ones(2)).numpy())
    assert c.cache_info().misses == 1


class _Counted:
    """A wrapper that counts its calls: state the function itself writes."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x):
        self.calls += 1
        return self.fn(x)


def test_state_the_function_writes_gets_no_guard():
    # NOTE (state the function writes): the counter changes during the trace; a guard
    # on it would retrace at every call
    counted = _Counted(lambda x: x * 2.0)
    f = torch.compile(counted)
    for _ in range(3):
        f(torch.ones(2))
    assert f.cache_info().misses == 1 and counted.calls == 1


class _Layer:
    factor = 2.0   # a class attribute, read through the instance

    def __init__(self):
        self.w = torch.ones(2)

    @torch.compile
    def forward(self, x):
        return x * self.w * self.factor


def test_a_method_compiled_in_its_class_and_a_class_attribute():
    layer = _Layer()
    x = torch.ones(2)

    def eager(x):
        return x * layer.w * layer.factor
    _check(layer.forward, eager, x,
           [lambda: setattr(layer, "w", torch.full((2,), 3.0)),
            lambda: setattr(_Layer, "factor", 5.0)], misses=3)


def test_the_broken_guard_names_the_path():
    cfg = {"scale": 2.0}
    f = torch.compile(lambda x: x * cfg["scale"])
    f(torch.ones(2))
    cfg["scale"] = 3.0
    (entry,) = f._cache.values()
    assert "cfg['scale']" in entry.broken_guard()


class _Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = types.SimpleNamespace(scale=2.0)


class _Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _Inner()   # a submodule whose forward never runs

    def forward(self, x):
        return x * self.inner.cfg.scale


def test_a_plain_object_below_a_submodule():
    m = _Outer()
    f = torch.compile(m)
    _check(f, m, torch.ones(2), lambda: setattr(m.inner.cfg, "scale", 3.0), misses=2)


def test_getattr_with_a_name_and_with_a_default():
    opts = types.SimpleNamespace(scale=2.0)
    names = ["scale"]

    def eager(x):
        for name in names:
            x = x * getattr(opts, name)
        return x * getattr(opts, "extra", 1.0)
    f = torch.compile(eager)
    _check(f, eager, torch.ones(2), [lambda: setattr(opts, "scale", 3.0),
                                     lambda: setattr(opts, "extra", 10.0)], misses=3)


def test_a_trace_function_set_before_keeps_running_and_is_restored():
    import sys
    seen = []

    def theirs(frame, event, arg):   # a debugger's or coverage's trace function
        if event == "call" and frame.f_code.co_name == "scaled":
            seen.append(event)
        return None

    cfg = {"scale": 2.0}

    def scaled(x):
        return x * cfg["scale"]
    f = torch.compile(scaled)
    before = sys.gettrace()
    sys.settrace(theirs)
    try:
        f(torch.ones(2))
        assert sys.gettrace() is theirs
    finally:
        sys.settrace(before)
    assert seen == ["call"]   # the trace ran the function once, and theirs saw it
    cfg["scale"] = 3.0
    np.testing.assert_allclose(f(torch.ones(2)).numpy(), [3.0, 3.0])


def test_keys_a_comprehension_stores_in_its_line():
    # NOTE (line events): the loop variable is stored within the line, so each read is
    # taken at its own instruction, with the key of its iteration
    cfg = {"a": 1.0, "b": 2.0, "c": 4.0}
    keys = ["a", "b"]

    def listed(x):
        return x * sum([cfg[k] for k in keys])

    def generated(x):
        return x * sum(cfg[k] for k in keys)
    for fn in (listed, generated):
        cfg.update(a=1.0, b=2.0)
        f = torch.compile(fn)
        _check(f, fn, torch.ones(2), [lambda: cfg.__setitem__("b", 8.0),
                                      lambda: cfg.__setitem__("a", -1.0)], misses=3)
        cfg["c"] = 5.0   # unread
        _check(f, fn, torch.ones(2), [], misses=3)


def test_an_alias_made_and_read_in_one_line():
    holder = types.SimpleNamespace(inner=types.SimpleNamespace(scale=2.0))

    def fn(x):
        inner = holder.inner; return x * inner.scale  # noqa: E702 - one line on purpose
    f = torch.compile(fn)
    _check(f, fn, torch.ones(2), lambda: setattr(holder.inner, "scale", 3.0), misses=2)


def test_a_local_alias_of_a_list_is_read_through():
    holder = types.SimpleNamespace(ws=[torch.ones(2)])

    def fn(x):
        ws = holder.ws
        for w in ws:
            x = x + w
        return x
    f = torch.compile(fn)
    _check(f, fn, torch.zeros(2), lambda: holder.ws.append(torch.ones(2)), misses=2)


def test_a_missing_key_or_attribute_the_function_tolerated():
    cfg = {}
    opts = types.SimpleNamespace()

    def fn(x):
        try:
            scale = cfg["scale"]
        except KeyError:
            scale = 1.0
        if hasattr(opts, "shift"):
            x = x + opts.shift
        return x * scale
    f = torch.compile(fn)
    _check(f, fn, torch.ones(2), [lambda: cfg.__setitem__("scale", 3.0),
                                  lambda: setattr(opts, "shift", 1.0)], misses=3)


def test_an_ordered_dict_iterated_and_a_defaultdict_left_alone():
    import collections
    table = collections.OrderedDict(a=1.0, b=2.0)
    counts = collections.defaultdict(float)

    def fn(x):
        total = 0.0
        for v in table.values():
            total = total + v
        scale = counts["s"] if "s" in counts else 1.0
        return x * total * scale
    f = torch.compile(fn)
    f(torch.ones(2))
    assert not counts   # the recording inserted no key
    _check(f, fn, torch.ones(2), [lambda: table.__setitem__("b", 5.0),
                                  lambda: counts.__setitem__("s", 2.0)], misses=3)


def test_a_tensor_hook_in_the_traced_backward():
    cfg = {"s": 2.0}

    def fn(x):
        y = x * 1.0
        y.register_hook(lambda g: g * cfg["s"])
        return y.sum()
    f = torch.compile(fn)
    for s in (2.0, 3.0):
        cfg["s"] = s
        x, xe = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
        f(x).backward()
        fn(xe).backward()
        np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy())
    assert f.cache_info().misses == 2


def _make_scaler(scale):
    def scaler(x):
        return x * scale

    def set_scale(value):
        nonlocal scale
        scale = value
    return scaler, set_scale


SCALER, SET_SCALE = _make_scaler(2.0)


def test_a_closure_variable_of_a_called_helper_rebound():
    f = torch.compile(lambda x: SCALER(x) + 1.0)
    _check(f, lambda x: SCALER(x) + 1.0, torch.ones(2), lambda: SET_SCALE(3.0), misses=2)


def test_a_method_of_a_class_defined_in_exec_d_code():
    # code exec'd from a string (a notebook tool, a generated model) is the user's too;
    # only the dunders dataclasses writes (in __create_fn__) are skipped
    space = {"torch": torch}
    exec("class Scaled:\n"
         "    def __init__(self):\n"
         "        self.w = torch.ones(2)\n"
         "    def __call__(self, x):\n"
         "        return x * self.w\n", space)
    m = space["Scaled"]()
    f = torch.compile(m.__call__)
    _check(f, m, torch.ones(2), lambda: setattr(m, "w", torch.full((2,), 4.0)), misses=2)
