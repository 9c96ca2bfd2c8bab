"""Write OUT.pb, OUT.json and OUT.npz atomically, all or nothing.

The sidecar lets later commands find inputs and outputs without users retyping
names; the .npz is TensorFlow's answer for a seeded input, the reference every
later rewrite is checked against.  Bytes are deterministic (sorted protobuf
fields, fixed zip timestamps) so regenerated fixtures diff cleanly.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile

import numpy as np

FORMAT = "graphtool-sidecar/1"


def sidecar_paths(out_pb: str) -> tuple[str, str]:
    stem = os.path.splitext(out_pb)[0]
    return stem + ".json", stem + ".npz"


def graphtool_version() -> str:
    try:
        import graphtool
        version = getattr(graphtool, "__version__", None)
        if version:
            return str(version)
        from importlib.metadata import version as dist_version
        return dist_version("graphtool")
    except Exception:
        return "unknown"


def build_sidecar(inputs, outputs, source: dict, versions: dict, reference: str | None, extra: dict) -> dict:
    def port(p):
        return {"name": p.name, "tensor": p.tensor, "dtype": p.dtype, "shape": p.shape}

    data = {
        "format": FORMAT,
        "inputs": [port(p) for p in inputs],
        "outputs": [port(p) for p in outputs],
        "source": source,
        "versions": versions,
        "reference": reference,
    }
    data.update(extra)
    return data


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An np.load-able .npz with fixed timestamps (np.savez stamps the current time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            z.writestr(info, member.getvalue())
    return buffer.getvalue()


def write_all(files: dict[str, bytes]) -> None:
    """Write every file to a temp name in its directory, then rename them all into place."""
    temps = []
    try:
        for path, payload in files.items():
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                       prefix="." + os.path.basename(path) + ".", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.chmod(tmp, 0o644)
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def json_bytes(data: dict) -> bytes:
    """Indented JSON with number lists (shapes) kept on one line."""
    text = json.dumps(data, indent=2)
    text = re.sub(r"\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    return (text + "\n").encode()
