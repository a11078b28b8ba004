"""PyTorch's names for dtypes in error messages, so an error reads as PyTorch's does:
``'Long'`` (the scalar-type name of ``"softmax" not implemented for 'Long'``) and
``long int`` (the C++ type name of ``expected m1 and m2 to have the same dtype``)."""
from __future__ import annotations

import numpy as np

_SCALAR_TYPE = {"float16": "Half", "float32": "Float", "float64": "Double", "int8": "Char",
                "int16": "Short", "int32": "Int", "int64": "Long", "uint8": "Byte",
                "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}
_C_TYPE = {"float16": "c10::Half", "float32": "float", "float64": "double",
           "int8": "signed char", "int16": "short int", "int32": "int", "int64": "long int",
           "uint8": "unsigned char", "bool": "bool"}


def scalar_type_name(dtype) -> str:
    """``np.int64`` -> ``'Long'``."""
    name = np.dtype(dtype).name
    return _SCALAR_TYPE.get(name, name)


def c_type_name(dtype) -> str:
    """``np.int64`` -> ``'long int'``."""
    name = np.dtype(dtype).name
    return _C_TYPE.get(name, name)
