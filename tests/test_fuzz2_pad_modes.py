"""``F.pad`` in reflect and circular mode against PyTorch's answers (found by the second
fuzz pass): circular padding with a crop wrapped the uncropped dim ((-1, 1) of [0, 1, 2]
gave [1, 2, 0], PyTorch [1, 2, 1]); reflect padding as wide as the dim (or any on a
size-1 dim, a division by zero) and circular padding wider than the dim returned
values where PyTorch refuses."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad._primitives.registry import ShapeError

X = np.arange(3, dtype=np.float32).reshape(1, 1, 3)


@pytest.mark.parametrize("pads,want", [((-1, 1), [1, 2, 1]), ((1, -1), [1, 0, 1]),
                                       ((-1, 2), [1, 2, 1, 2]), ((2, 1), [1, 2, 0, 1, 2, 0]),
                                       ((3, 3), [0, 1, 2] * 3)])
def test_circular_padding_as_pytorch(pads, want):
    assert F.pad(tg.tensor(X), pads, mode="circular").numpy()[0, 0].tolist() == want


@pytest.mark.parametrize("pads,want", [((2, 2), [2, 1, 0, 1, 2, 1, 0]),
                                       ((-1, 2), [1, 2, 1, 0])])
def test_reflect_padding_within_the_limit_is_unchanged(pads, want):
    assert F.pad(tg.tensor(X), pads, mode="reflect").numpy()[0, 0].tolist() == want


@pytest.mark.parametrize("mode,pads,size", [("reflect", (3, 0), 3), ("reflect", (0, 5), 3),
                                            ("reflect", (1, 1), 1), ("circular", (4, 0), 3)])
def test_padding_past_the_limit_raises_naming_the_mode(mode, pads, size):
    with pytest.raises(ShapeError, match=f"pad: {mode} padding"):
        F.pad(tg.zeros(1, 1, size), pads, mode=mode)


def test_circular_padding_gradient_sums_the_wrapped_copies():
    x = tg.tensor(X, requires_grad=True)
    F.pad(x, (-1, 2), mode="circular").sum().backward()   # reads [1, 2, 1, 2]
    assert x.grad.numpy()[0, 0].tolist() == [0, 2, 2]
