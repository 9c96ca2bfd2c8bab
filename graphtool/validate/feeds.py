"""Input data for a validation run: seeded random, a .npy/.npz file, an image, or reference data.

Every source ends as one array per input, with the shape and dtype the
signature asks for, so TensorFlow and OpenCV see exactly the same numbers.
"""
from __future__ import annotations

import os

import numpy as np

from graphtool.dtypes import to_numpy
from graphtool.errors import GraphtoolError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_SEED = 0


def random_inputs(ports, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Standard-normal floats (negatives exercise ReLU-like branches), small ints, random bools."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for port in ports:
        dtype = to_numpy(port.dtype)
        if dtype.kind == "f":
            arrays[port.name] = rng.standard_normal(port.shape).astype(dtype)
        elif dtype.kind in "iu":
            arrays[port.name] = rng.integers(0, 10, size=port.shape).astype(dtype)
        elif dtype.kind == "b":
            arrays[port.name] = rng.integers(0, 2, size=port.shape).astype(bool)
        else:
            raise GraphtoolError(f"cannot make random data for input {port.name!r} of type "
                                 f"{port.dtype}; pass --input FILE.npz")
    return arrays


def file_inputs(path, ports) -> dict[str, np.ndarray]:
    """Inputs from ``.npy`` (one input), ``.npz`` (keys NAME or inputs/NAME) or an image."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GraphtoolError("no such input file; check the path", path=path)
    lower = path.lower()
    if lower.endswith(".npy"):
        if len(ports) != 1:
            raise GraphtoolError(f"a .npy file holds one array but the graph has {len(ports)} "
                                 "inputs; use a .npz with one key per input name", path=path)
        return {ports[0].name: fit(_load_npy(path), ports[0], path)}
    if lower.endswith(".npz"):
        return npz_inputs(path, ports)
    if lower.endswith(IMAGE_SUFFIXES):
        return image_inputs(path, ports)
    raise GraphtoolError("unknown input file type; give .npy, .npz or an image "
                         "(" + ", ".join(IMAGE_SUFFIXES) + ")", path=path)


def npz_inputs(path: str, ports) -> dict[str, np.ndarray]:
    data = load_npz(path)
    arrays = {}
    for port in ports:
        for key in (port.name, f"inputs/{port.name}"):
            if key in data:
                arrays[port.name] = fit(data[key], port, path)
                break
        else:
            raise GraphtoolError(f"no array for input {port.name!r} (looked for keys "
                                 f"{port.name!r} and 'inputs/{port.name}'; the file has "
                                 f"{sorted(data)[:6]})", path=path)
    return arrays


def image_inputs(path: str, ports) -> dict[str, np.ndarray]:
    """One image for one NHWC input: resized to H x W, RGB (or gray/RGBA) as C asks.

    Pixel values stay 0..255 - preprocessing is the model's business (a Keras
    Rescaling layer, for instance); pass a .npy for anything else.
    """
    if len(ports) != 1 or ports[0].shape is None or len(ports[0].shape) != 4 \
            or ports[0].shape[3] not in (1, 3, 4):
        shapes = ", ".join(f"{p.name} {list(p.shape or [])}" for p in ports)
        raise GraphtoolError(f"an image fits one NHWC input with 1, 3 or 4 channels, not {shapes}; "
                             "pass a .npy/.npz instead", path=path)
    try:
        import cv2
    except ImportError:
        raise GraphtoolError("reading an image needs OpenCV in this Python (pip install "
                             "opencv-python-headless); or save the input as .npy", path=path) \
            from None
    port = ports[0]
    batch, height, width, channels = port.shape
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise GraphtoolError("OpenCV cannot read this image; check the file", path=path)
    image = _channels(cv2, image, channels)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if image.ndim == 2:
        image = image[:, :, None]
    array = np.repeat(image[None], batch, axis=0).astype(to_numpy(port.dtype))
    return {port.name: array}


def _channels(cv2, image, channels: int):
    """OpenCV reads BGR(A); Keras models expect RGB(A)."""
    gray = image.ndim == 2
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF: same 0..255 range as 8-bit images
        image = (image // 257).astype(np.uint8)
    if channels == 1:
        return image if gray else cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if gray else cv2.cvtColor(
            image[:, :, :3], cv2.COLOR_BGR2RGB)
    if gray:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGBA)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)


def fit(array, port, path: str) -> np.ndarray:
    """``array`` with the port's dtype; a missing batch dimension of 1 is added."""
    array = np.asarray(array)
    shape = tuple(port.shape) if port.shape is not None else array.shape
    if array.shape != shape and (1,) + array.shape == shape:
        array = array[None]
    if array.shape != shape:
        raise GraphtoolError(f"input {port.name!r} needs shape {list(shape)}, the file gives "
                             f"{list(array.shape)}", path=path)
    dtype = to_numpy(port.dtype)
    if dtype.kind != array.dtype.kind and not (dtype.kind == "f" and array.dtype.kind in "iub"):
        raise GraphtoolError(f"input {port.name!r} is {port.dtype}, the file gives "
                             f"{array.dtype}", path=path)
    return array.astype(dtype, copy=False)


def load_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise GraphtoolError(f"not a readable .npz file ({exc})", path=path) from None


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GraphtoolError(f"not a readable .npy file ({exc})", path=path) from None


def reference_arrays(path, signature) -> tuple[dict, dict]:
    """(inputs, outputs) from a reference .npz with keys inputs/NAME and outputs/NAME."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GraphtoolError("no such reference data file; check the path", path=path)
    data = load_npz(path)
    inputs, outputs = {}, {}
    for kind, ports, target in (("inputs", signature.inputs, inputs),
                                ("outputs", signature.outputs, outputs)):
        for port in ports:
            key = f"{kind}/{port.name}"
            if key not in data:
                raise GraphtoolError(f"no {key!r} array (the file has {sorted(data)[:6]}); "
                                     "reference data needs inputs/NAME and outputs/NAME for "
                                     "every input and output", path=path)
            target[port.name] = fit(data[key], port, path) if kind == "inputs" else data[key]
    return inputs, outputs
