"""The render memo's key for a kernel step (``runtime.cpu_program.llvm_sources``).

NOTE (render memo keys): the key is the kernel's loop IR after its name, without its
buffer sizes and outer extent where the renderer does not read them. The outer loop runs
from the ``start`` to the ``end`` argument of the kernel ABI, and buffers are pointers
(their offsets are the executor's); only a kernel whose buffers reach ``stream_min_bytes``
may stream its rows (NOTE (streamed rows), codegen.stream_rows), which reads the sizes.
The kernels an RNN reuses at another length read a longer input stack, and its copies
of a (T, B, h) stack run T*B rows; with the sizes in the key each was rendered again, to
the same text (LSTM over lengths 4, 8, 12, 16: 39 renders for 18 new sources after the
first length).
"""
from __future__ import annotations

from ..codegen.schedule import KernelStep


def render_key(step: KernelStep, stream_min_bytes: int) -> str:
    """What the LLVM source of ``step``'s kernel depends on, rendered with
    ``stream_min_bytes`` (besides the renderer and the other render options).

    >>> from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
    >>> from tracegrad.codegen.ops import Op
    >>> import numpy as np
    >>> b = KernelBuilder("k", outer=4)
    >>> b.store("buf1", b.var_outer, b.emit(Op.LOAD, ("buf0", b.var_outer), np.float32))
    >>> f32 = np.dtype("float32")
    >>> k = b.finish([BufferArg("buf0", f32, 12, False), BufferArg("buf1", f32, 4, True)])
    >>> step = KernelStep("k", k, ["a", "b"], str(k), (0,))
    >>> print(render_key(step, 0))
    o: buf0 <f4 in, buf1 <f4 out
      %0 = LOAD(buf0, o) : float32
      STORE buf1[o] = %0
    >>> render_key(step, 64).splitlines()[0]
    'o in [0, 4)) buf0: float32[12] in, buf1: float32[4] out'
    """
    text = step.loop_ir.split("(", 1)[1]
    key = _KEYS.get((text, stream_min_bytes))
    if key is None:
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        key = _KEYS[(text, stream_min_bytes)] = _key(step, text, stream_min_bytes)
    return key


# loop IR after the name -> key: an unrolled loop's steps repeat a few texts hundreds of
# times, and the key (one object per text) then hashes once in the render memo
_KEYS: dict[tuple[str, int], str] = {}
_KEYS_MAX = 8192


def _key(step: KernelStep, text: str, stream_min_bytes: int) -> str:
    k = step.kernel
    sizes = [b.size * b.dtype.itemsize for b in k.buffers]
    if 0 < stream_min_bytes <= sum(sizes) and all(isinstance(n, int) for n in sizes):
        return text
    bufs = ", ".join(f"{b.name} {b.dtype.str} {'out' if b.is_output else 'in'}"
                     for b in k.buffers)
    body = text.partition("\n")[2]
    return f"{k.outer_var}: {bufs}\n{body}"
