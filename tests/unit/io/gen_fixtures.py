#!/usr/bin/python3
"""Writes the fixture files of the io unit tests (run once; the outputs are committed).

.npy files come from numpy itself, so the reader is checked against the real writer in all
three format versions. The safetensors file is written by hand (numpy only) with a header
length that leaves the data section 4 bytes off an 8-byte boundary, so the 8-byte tensors
are misaligned and the reader must copy them.
"""
import json
import os
import struct

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def npy(name, arr, version=None):
    with open(os.path.join(HERE, name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def main():
    os.makedirs(HERE, exist_ok=True)
    npy("f4_2x3.npy", (np.arange(6, dtype="<f4") * 0.5 - 1).reshape(2, 3))
    npy("f8_4.npy", np.array([1.5, -2.25, 1e300, -0.0], dtype="<f8"))
    npy("i4_2x2x2.npy", (np.arange(8, dtype="<i4") - 4).reshape(2, 2, 2))
    npy("i8_scalar.npy", np.array(-(2**40) - 7, dtype="<i8"))
    npy("f8_0x3.npy", np.zeros((0, 3), dtype="<f8"))
    npy("v2_f4_3.npy", np.array([1, 2, 3], dtype="<f4"), version=(2, 0))
    npy("v3_i8_2x1.npy", np.array([[5], [-6]], dtype="<i8"), version=(3, 0))

    # safetensors: names deliberately not in sorted order, __metadata__ in the middle.
    tensors = [
        ("zeta", "F32", [2, 3], (np.arange(6, dtype="<f4") + 0.25).tobytes()),
        ("alpha", "F64", [3], np.array([0.5, -1.5, 2.5], dtype="<f8").tobytes()),
        ("mid.idx", "I32", [2], np.array([7, -8], dtype="<i4").tobytes()),
        ("big", "I64", [2, 1], np.array([2**40, -3], dtype="<i8").tobytes()),
        ("half", "BF16", [2], b"\x80\x3f\x00\x40"),
        ("f16", "F16", [4], np.array([1.5, -2.0, 2.0**-24, 65504.0], dtype="<f2").tobytes()),
        ("flags", "U8", [4], b"\x01\x00\x01\x01"),
    ]
    header, off, data = {}, 0, b""
    for i, (name, dtype, shape, raw) in enumerate(tensors):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
        if i == 1:
            header["__metadata__"] = {"format": "test"}
    text = json.dumps(header, separators=(",", ":")).encode()
    while (8 + len(text)) % 8 != 4:
        text += b" "
    with open(os.path.join(HERE, "small.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
