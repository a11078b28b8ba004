"""NumPy's names for PyTorch's parameters, which PyTorch's argument parser accepts on every
function and Tensor method it parses (``numpy_compatibility_arg_names`` in
torch/csrc/utils/python_arg_parser.cpp): ``x.sum(axis=1, keepdims=True)``,
``torch.cat(ts, axis=0)``, ``torch.add(x1=a, x2=b)``.

NOTE (numpy aliases cost nothing): a hot call that works never looks for an alias. The
wrapper of ``pytorch_args.adapt`` renames aliases only after a call with keywords raised
TypeError. A function that would otherwise be left unwrapped (its parameters cover
PyTorch's) gets that wrapper for the aliases alone, one frame (~0.1 us) a call, unless it
is hot: reductions (sum, mean, max, softmax, cumsum, ...) and squeeze/unsqueeze/chunk/unbind
take ``axis``/``keepdims`` as keyword-only parameters (NOT_GIVEN by default) resolved by
``from_numpy_names`` only when one was given (one ``is`` test each otherwise), and the rest
of ``pytorch_args.KEPT_UNWRAPPED_FOR_SPEED`` (size, add_, view_as, ...) refuse aliases.
"""
from __future__ import annotations

# PyTorch's parameter -> NumPy's names for it (python_arg_parser.cpp, torch 2.13)
NUMPY_NAMES = {"dim": ("axis",), "keepdim": ("keepdims",), "input": ("x", "a", "x1"),
               "other": ("x2",)}

NOT_GIVEN = object()  # default of an alias parameter: ``None`` is a valid ``dim``


def alias_renames(torch_names, own_names, rename) -> dict[str, str]:
    """alias -> the function's own parameter, for each PyTorch parameter the function has
    (under PyTorch's name, or under its own name where ``rename`` maps PyTorch's to it).
    A parameter named ``dim``/``other``/... here counts even where PyTorch's docstring
    calls it otherwise (``Tensor.div_(value)``: its parser's name is ``other``)."""
    renames = {}
    for torch_name, aliases in NUMPY_NAMES.items():
        own = torch_name if torch_name in own_names else (
            rename.get(torch_name) if torch_name in torch_names else None)
        if own is None:
            continue
        for alias in aliases:
            if alias not in own_names:
                renames[alias] = own
    return renames


def with_own_names(fn_name: str, kwargs: dict, renames: dict) -> dict | None:
    """``kwargs`` with each alias replaced by the parameter it names; None without one."""
    used = [a for a in kwargs if a in renames]
    if not used:
        return None
    renamed = dict(kwargs)
    for alias in used:
        own = renames[alias]
        if own in renamed:
            raise TypeError(f"{fn_name}(): got multiple values for argument '{own}' (also "
                            f"given as NumPy's name '{alias}')")
        renamed[own] = renamed.pop(alias)
    return renamed


def torch_name_for_alias(name: str, torch_names) -> str | None:
    """The PyTorch parameter that NumPy's ``name`` stands for in a signature taking
    ``torch_names``, or None."""
    for torch_name, aliases in NUMPY_NAMES.items():
        if name in aliases and torch_name in torch_names:
            return torch_name
    return None


def from_numpy_names(fn_name: str, dim, keepdim, axis, keepdims, dim_default=None):
    """(dim, keepdim) of a function that also takes NumPy's ``axis``/``keepdims`` as
    keyword-only parameters (NOT_GIVEN by default); called only when one was given, or
    when a required ``dim`` (``dim_default`` NOT_GIVEN) is missing."""
    if axis is not NOT_GIVEN:
        if dim is not dim_default:
            raise TypeError(f"{fn_name}(): got multiple values for argument 'dim' (also "
                            f"given as NumPy's name 'axis')")
        dim = axis
    elif dim is NOT_GIVEN:
        raise TypeError(f"{fn_name}() missing 1 required positional argument: 'dim'")
    if keepdims is not NOT_GIVEN:
        if keepdim is not False:
            raise TypeError(f"{fn_name}(): got multiple values for argument 'keepdim' (also "
                            f"given as NumPy's name 'keepdims')")
        keepdim = keepdims
    return dim, keepdim
