"""The worked examples of docs/commitments.md: the tensors, and the roots the document states."""

from __future__ import annotations

import numpy as np


def tensors() -> dict[str, np.ndarray]:
    return {
        "scalar": np.array(1.0, dtype=np.float32),
        "vector": np.array([1.0, 2.0, 3.0], dtype=np.float32),
        "empty": np.zeros((0,), dtype=np.float32),
        "two_leaves": np.arange(300, dtype=np.float32).reshape(3, 100),
        "five_leaves": np.arange(1280, dtype=np.float32),
    }


def state() -> dict[str, np.ndarray]:
    return {
        "step": np.array(3.0, dtype=np.float32),
        "param/w": np.array([1.0, 2.0, 3.0], dtype=np.float32),
        "opt/w/momentum": np.zeros(3, dtype=np.float32),
    }


# Written in docs/commitments.md; a change here is a change of the protocol.
ROOTS = {
    "scalar": "16ed2af27b7bba2b7b75072cd30385afef5dd5d9ee4adce9478c3d2bbb36c89f",
    "vector": "7766215b07a17f6f70e836d4b382ed84a22e016015c5a50e2769ca9d8f57e6dc",
    "empty": "e381b1202f19df3584c247212bafc76d1662af28dcb19b867748e1951f03ffe4",
    "two_leaves": "cc4a83fe56ab5ea6f9a5684662dcae7d5e3b417b1d91f51f4d447761efec0bf8",
    "five_leaves": "3c47a17f312710f6aaec76c480d9c40e2b74476b08529fe04b7a0c26eab8b8d6",
}
STATE_ROOT = "6e1d43e1ada5850152c0eb68611fb59b80f52f38a29fa45b2c218ae4e1537e3c"
