"""save/load: round trips, nested structures, and clear errors for damaged files."""
import io
import math
import os
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.serialization import MAGIC, load, save


def roundtrip(obj, tmp_path=None):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf)


def assert_same_tensor(a, b):
    assert isinstance(b, torch.Tensor)
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(np.asarray(a._data), np.asarray(b._data))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64,
                                   torch.int32, torch.int16, torch.int8, torch.uint8,
                                   torch.bool])
def test_dtypes_round_trip(dtype):
    src = (torch.arange(24).reshape(2, 3, 4) % 7).to(dtype)
    assert_same_tensor(src, roundtrip(src))


def test_special_shapes_and_views(tmp_path):
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5)
    cases = {
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),
        "strided": base[::2, 1::2],
        "expanded": torch.tensor([1.0, 2.0]).expand(3, 2),
        "nan_inf": torch.tensor([math.nan, math.inf, -math.inf]),
    }
    path = tmp_path / "views.tg"
    save(cases, path)
    out = load(path)
    assert list(out) == list(cases)
    for k in cases:
        assert_same_tensor(cases[k], out[k])
    out["strided"][0, 0] = 100.0  # loaded tensors are writable and independent
    assert out["strided"].tolist()[0][0] == 100.0 and base.tolist()[0][1] == 1.0
    assert out["transposed"].tolist()[0][0] == 0.0


def test_nested_structures_and_plain_values():
    w = torch.randn(3, 2)
    obj = OrderedDict([
        ("model", OrderedDict([("fc.weight", w), ("fc.bias", torch.zeros(2))])),
        ("optimizer", {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(3)}},
                       "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0],
                                         "nesterov": False, "foreach": None}]}),
        ("epoch", 12), ("loss", 0.25), ("name", "run-α"), ("blob", b"\x00\xffraw"),
        ("big", 2 ** 70), ("nan", math.nan), ("shape", torch.Size([2, 3])),
        ("list", [1, [2.0, (3, "x")], None, True]), ("dtype", torch.float16),
        ("np", np.arange(3, dtype=np.int16)), ("np_scalar", np.float64(1.5)),
        ((1, "tuple-key"), "ok"), (None, 1),
    ])
    out = roundtrip(obj)
    assert type(out) is OrderedDict and list(out) == list(obj)
    assert type(out["optimizer"]) is dict
    assert_same_tensor(w, out["model"]["fc.weight"])
    st = out["optimizer"]["state"]
    assert list(st) == [0] and float(st[0]["step"]) == 3.0
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert out["optimizer"]["param_groups"][0]["foreach"] is None
    assert out["epoch"] == 12 and type(out["epoch"]) is int
    assert out["loss"] == 0.25 and out["name"] == "run-α" and out["blob"] == b"\x00\xffraw"
    assert out["big"] == 2 ** 70 and math.isnan(out["nan"])
    assert out["shape"] == torch.Size([2, 3]) and isinstance(out["shape"], torch.Size)
    assert out["list"] == [1, [2.0, (3, "x")], None, True]
    assert out["dtype"] is torch.float16
    assert out["np"].dtype == np.int16 and out["np"].tolist() == [0, 1, 2]
    assert out["np_scalar"] == 1.5
    assert out[(1, "tuple-key")] == "ok" and out[None] == 1


def test_requires_grad_and_shared_storage_become_copies():
    w = torch.ones(2, 2, requires_grad=True)
    view = w.detach()[0]
    out = roundtrip({"w": w, "view": view})
    assert out["w"].requires_grad and not out["view"].requires_grad
    out["view"][0] = 5.0
    assert out["w"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_paths_pathlike_and_files(tmp_path):
    t = torch.arange(5)
    save(t, str(tmp_path / "a.tg"))
    save(t, tmp_path / "b.tg")
    with open(tmp_path / "c.tg", "wb") as f:
        save(t, f)
    for name in "abc":
        assert load(tmp_path / f"{name}.tg").tolist() == [0, 1, 2, 3, 4]
    with open(tmp_path / "a.tg", "rb") as f:
        assert load(f, map_location="cpu").tolist() == [0, 1, 2, 3, 4]
    assert load(str(tmp_path / "a.tg"), map_location=lambda s, loc: s).tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(FileNotFoundError, match="missing.tg"):
        load(tmp_path / "missing.tg")


def _saved_bytes():
    buf = io.BytesIO()
    save({"w": torch.arange(100, dtype=torch.float32), "step": 3}, buf)
    return buf.getvalue()


def test_truncated_file_is_a_clear_error(tmp_path):
    data = _saved_bytes()
    for cut in (4, 30, 70, len(data) - 1):
        path = tmp_path / f"cut{cut}.tg"
        path.write_bytes(data[:cut])
        with pytest.raises(RuntimeError, match="truncated|magic") as e:
            load(path)
        assert f"cut{cut}.tg" in str(e.value)


def test_flipped_byte_anywhere_is_detected(tmp_path):
    data = _saved_bytes()
    path = tmp_path / "flip.tg"
    for pos in (len(MAGIC) + 20, len(data) // 2, 200, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(RuntimeError, match="flip.tg.*(corrupt|truncated)"):
            load(path)


def test_wrong_magic_and_version(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(RuntimeError, match="x.pt.*not a valid PyTorch zip checkpoint"):
        load(path)
    path.write_bytes(b"\x80\x02" + b"\0" * 100)
    with pytest.raises(RuntimeError, match="wrong magic.*legacy"):
        load(path)
    data = bytearray(_saved_bytes())
    data[len(MAGIC)] = 99
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="version 99"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(RuntimeError, match="magic"):
        load(path)


class _Model:
    def state_dict(self):
        return {}


@pytest.mark.parametrize("obj", [_Model(), lambda x: x, {1, 2}, object(), {"f": print},
                                 [1, _Model()], 1 + 2j])
def test_native_format_refuses_objects_that_are_not_data(obj, tmp_path):
    with pytest.raises(TypeError, match="state_dict"):
        save(obj, tmp_path / "bad.tg", format="tracegrad")
    assert not (tmp_path / "bad.tg").exists()


def test_default_format_pickles_other_objects_like_pytorch(tmp_path):
    # PyTorch >= 2.6: save writes any object; load refuses code unless allowed
    path = tmp_path / "model.pt"
    save({"model": _Model(), "w": torch.ones(2)}, path)
    assert path.read_bytes()[:2] == b"PK"
    with pytest.raises(Exception, match="test_serialization._Model was not an allowed global"):
        load(path)
    with torch.serialization.safe_globals([_Model]):
        out = load(path)
    assert isinstance(out["model"], _Model) and out["w"].tolist() == [1.0, 1.0]
    with pytest.warns(UserWarning, match="weights_only=False"):
        assert isinstance(load(path, weights_only=False)["model"], _Model)

    def local():
        return 1
    with pytest.raises(TypeError, match="cannot save an object of type builtins.function"):
        save(local, tmp_path / "f.pt")
    assert not (tmp_path / "f.pt").exists()


def test_cycle_is_an_error():
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="cycle"):
        save(a, io.BytesIO())


def test_large_tensor_round_trip_is_zero_copy_views(tmp_path):
    w = torch.randn(300, 400)
    path = tmp_path / "w.tg"
    save({"w": w}, path)
    out = load(path)["w"]
    assert out._data.flags.writeable and os.path.getsize(path) > 300 * 400 * 4
    assert_same_tensor(w, out)
