"""Kernel parameters: a fitted kernel body whose values depend on ``s0`` reads them at run time.

NOTE (kernel parameters): fitting (``symbolic.py``) leaves a template of each kernel body;
where an integer (a reduction's extent, a stride, a divisor) or a float (a mean's ``1/N``)
differs between sizes, the template holds a ``Poly`` or ``FloatForm`` in that place.
``parametrise`` rewrites such a body once, for every size: a size-dependent constant
``%3 = CONST(8)`` becomes ``%3 = LOAD(p_int64, %pk0)`` and a loop ``for r0 in [0, 8)``
becomes ``for r0 in [0, %pe0)`` over a value loaded the same way.  The parameters live in
one small constant buffer per kernel and dtype (``Storage.CONSTANT``, ``BufferInfo.value``)
whose contents ``instantiate`` computes per size, so the kernel calling convention, the
driver and the thread split need no change, and LLVM hoists the loads out of the loops as
it does for the float arguments' 0-d buffers (``runtime.cpu_program``).  The body itself
is then the same object at every size: one LLVM compile serves them all.
"""
from __future__ import annotations

import numpy as np

from ..codegen.loop_ir import INDEX, BufferArg, Instr, Loop, LoopKernel
from ..codegen.ops import Op
from ..codegen.schedule import BufferInfo, KernelStep, Storage
from ..codegen.size_params import LENS
from .symbolic import (FloatForm, NotSymbolic, Params, Poly, _Dict, _List, _Object,
                       _static, _Tuple)


class _Parameters:
    """The parameters of one kernel: a buffer per dtype and the load statements."""

    def __init__(self, kernel_name: str) -> None:
        self.kernel_name = kernel_name
        self.values: dict[str, list] = {}     # dtype name -> templates, in buffer order
        self.prelude: list[Instr] = []        # index constants and extent loads
        self._index_names: dict[int, str] = {}
        self._extents: dict[tuple, str] = {}

    @staticmethod
    def buffer(dtype: np.dtype) -> str:
        return f"p_{dtype.name}"

    def _index(self, k: int) -> str:
        if k not in self._index_names:
            name = self._index_names[k] = f"%pk{k}"
            self.prelude.append(Instr(name, Op.CONST, (k,), INDEX))
        return self._index_names[k]

    def load(self, out: str, dtype: np.dtype, template) -> Instr:
        """``out = LOAD(<the parameter buffer of dtype>, <its slot for template>)``."""
        items = self.values.setdefault(dtype.name, [])
        items.append(template)
        return Instr(out, Op.LOAD, (self.buffer(dtype), self._index(len(items) - 1)), dtype)

    def extent(self, template: Poly) -> str:
        key = template.coefs
        if key not in self._extents:
            name = self._extents[key] = f"%pe{len(self._extents)}"
            self.prelude.append(self.load(name, INDEX, template))
        return self._extents[key]


def _items(template) -> list:
    return template.items if isinstance(template, (_List, _Tuple)) else list(template)


def _body(template, params: _Parameters) -> list:
    """A static body in which every size-dependent value is loaded from ``params``."""
    if _static([template]):
        return template
    out = []
    for s in _items(template):
        if _static([s]):
            out.append(s)
        elif s.cls is Instr and s.fields["op"] is Op.CONST and _static(
                [s.fields["out"], s.fields["dtype"]]):
            (value,) = _items(s.fields["args"])
            if not isinstance(value, (Poly, FloatForm)):
                raise NotSymbolic(f"kernel {params.kernel_name}: constant {value!r}")
            out.append(params.load(s.fields["out"], np.dtype(s.fields["dtype"]), value))
        elif s.cls is Loop and _static([s.fields["var"]]):
            extent = s.fields["extent"]
            if not isinstance(extent, (int, Poly)):
                raise NotSymbolic(f"kernel {params.kernel_name}: loop extent {extent!r}")
            extent = params.extent(extent) if isinstance(extent, Poly) else extent
            out.append(Loop(s.fields["var"], extent, _body(s.fields["body"], params)))
        else:
            what = s.cls.__name__ if isinstance(s, _Object) else type(s).__name__
            raise NotSymbolic(f"kernel {params.kernel_name}: a {what} statement depends on "
                              f"the size beyond its constants and loop extents")
    return out


def _step(step: _Object, infos: dict) -> _Object:
    """The step template with its kernel's body parametrised; adds the parameter
    buffers' BufferInfo templates to ``infos``."""
    kernel = step.fields["kernel"]
    name = step.fields["name"]
    params = _Parameters(name)
    body = _body(kernel.fields["body"], params)
    args, bound = list(_items(kernel.fields["buffers"])), list(_items(step.fields["buffers"]))
    for dtype_name, values in params.values.items():
        dtype = np.dtype(dtype_name)
        program_name = f"{name}.{params.buffer(dtype)}"
        args.append(BufferArg(params.buffer(dtype), dtype, len(values), False))
        bound.append(program_name)
        info = BufferInfo(program_name, -1, (len(values),), dtype, "temp", Storage.CONSTANT)
        infos[program_name] = _Object(BufferInfo, {**vars(info),
                                                   "value": Params(dtype, values)})
    new_kernel = _Object(LoopKernel, {**kernel.fields, "body": params.prelude + body,
                                      "buffers": _List(args)})
    return _Object(KernelStep, {**step.fields, "kernel": new_kernel, "buffers": _List(bound)})


def parametrise(template) -> tuple[object, int]:
    """``template`` (a fitted Program) with every kernel body that depends on the size
    rewritten to load its size-dependent values (NOTE (kernel parameters)), and how many
    kernels were rewritten."""
    if not isinstance(template, _Object) or isinstance(template.fields["steps"], list):
        return template, 0
    # kernels that load lengths of their own (NOTE (length parameters), codegen/size_params.py)
    # whose values follow s0 take size parameters too, without a rewrite
    sized = _sized_by_lengths(template)
    infos: dict = {}
    steps = []
    for step in _items(template.fields["steps"]):
        if (isinstance(step, _Object) and step.cls is KernelStep
                and isinstance(step.fields["kernel"], _Object)
                and not _static([step.fields["kernel"].fields["body"]])):
            step = _step(step, infos)
        steps.append(step)
    if not infos:
        return template, len(sized)
    buffers = template.fields["buffers"]
    merged = dict(buffers.items if isinstance(buffers, _Dict) else buffers)
    merged.update(infos)
    fields = {**template.fields, "steps": _List(steps), "buffers": _Dict(merged)}
    return _Object(template.cls, fields), len({k.split(".p_")[0] for k in infos} | sized)


def _sized_by_lengths(template: _Object) -> set[str]:
    """Names of the kernels whose ``lens`` buffer holds values that follow ``s0``."""
    buffers = template.fields["buffers"]
    items = buffers.items if isinstance(buffers, _Dict) else buffers
    return {name.rsplit(".", 1)[0] for name, info in items.items()
            if name.endswith(f".{LENS}") and isinstance(info, _Object)
            and isinstance(info.fields.get("value"), Params)}
