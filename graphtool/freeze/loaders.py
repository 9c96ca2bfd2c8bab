"""Get a Keras model object: from a file, from a builder function, with custom objects.

Whichever Keras is active in this process (Keras 3, or tf-keras in the child
process) does the loading; errors that mean "your input is wrong" become
one-line GraphtoolErrors naming the file and the option that fixes them.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys

from graphtool.errors import GraphtoolError

_UNKNOWN_CLASS = re.compile(
    r"(?:Could not locate (?:class|function) |Unknown (?:layer|object|class|activation|"
    r"loss|metric|initializer|regularizer|constraint)(?: type)?: ?)'?([A-Za-z_][\w.>]*)'?")


def keras_module(flavour: str):
    """The Keras package for a flavour; tf-keras only where TF_USE_LEGACY_KERAS was set first."""
    if flavour == "k2":
        if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
            raise RuntimeError("tf-keras must run in the freeze worker process")
        import tf_keras
        return tf_keras
    import keras
    return keras


def import_target(spec: str, what: str):
    """Import `FILE.py` or `pkg.module`; the module object."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        if not os.path.isfile(spec):
            raise GraphtoolError(f"{what} file not found", path=spec)
        name = "_graphtool_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.abspath(spec))[0])
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, spec)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise GraphtoolError(f"importing {what} failed: {type(exc).__name__}: {_first_line(exc)}",
                                 path=spec) from exc
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise GraphtoolError(f"cannot import {what} module {spec!r}: {_first_line(exc)}; "
                             "pass a FILE.py path or a module on PYTHONPATH") from exc
    except Exception as exc:
        raise GraphtoolError(f"importing {what} module {spec!r} failed: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from exc


def custom_objects(specs: list[str]) -> dict:
    """Every class and function a custom-objects file/module defines, by name.

    Importing also runs any `register_keras_serializable` decorators in it.
    """
    found = {}
    for spec in specs:
        module = import_target(spec, "--custom-objects")
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                    getattr(obj, "__module__", None) == module.__name__ and not name.startswith("_"):
                found[name] = obj
    return found


def build_model(spec: str, flavour: str):
    """Call a `module:function` or `FILE.py:function` builder and check it returns a model."""
    target, sep, func_name = spec.rpartition(":")
    if not sep or not target or not func_name:
        raise GraphtoolError(f"bad --builder {spec!r}: write MODULE:FUNCTION or FILE.py:FUNCTION")
    module = import_target(target, "--builder")
    func = getattr(module, func_name, None)
    if not callable(func):
        raise GraphtoolError(f"--builder: {target} has no function {func_name!r}", path=target)
    keras = keras_module(flavour)
    keras.backend.clear_session()
    try:
        model = func()
    except GraphtoolError:
        raise
    except Exception as exc:
        raise GraphtoolError(f"--builder {func_name}() failed: {type(exc).__name__}: {_first_line(exc)}",
                             path=target) from exc
    if not isinstance(model, keras.Model):
        raise GraphtoolError(
            f"--builder {func_name}() returned {type(model).__name__}, not a "
            f"{'tf-keras' if flavour == 'k2' else 'Keras 3'} Model", path=target)
    return model


def load_model(path: str, flavour: str, objects: dict):
    """Load a .keras/.h5 model for inference (no compile), mapping user errors to one line."""
    keras = keras_module(flavour)
    keras.backend.clear_session()
    try:
        if flavour == "k2":
            return keras.models.load_model(path, custom_objects=objects, compile=False)
        with keras.saving.custom_object_scope(objects):
            return keras.models.load_model(path, compile=False, safe_mode=False)
    except Exception as exc:
        text = str(exc)
        match = _UNKNOWN_CLASS.search(text)
        if match:
            raise GraphtoolError(
                f"model uses custom class {match.group(1)!r} that is not defined: pass "
                "--custom-objects FILE.py (or a module) that defines it", path=path) from exc
        failure = GraphtoolError(
            f"{'tf-keras' if flavour == 'k2' else 'Keras 3'} cannot load the model: "
            f"{type(exc).__name__}: {_first_line(exc)}", path=path)
        failure.load_failure = True  # graphtool.freeze then tries the other Keras
        raise failure from exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
