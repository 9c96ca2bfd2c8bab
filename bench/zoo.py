"""The benchmark zoo: keras.applications models frozen by `graphtool freeze`, built on demand.

Too large to commit, so each entry is built the first time something asks for
it and cached in `$GRAPHTOOL_ZOO` (default ~/.cache/graphtool/zoo) as
`<model>.<flavour>.pb` with its `.json` sidecar and `.npz` reference.
Flavour `k3` is Keras 3, `k2` is tf-keras 2 (frozen in graphtool's child
process).  Weights are random (weights=None, seed 0): nothing is downloaded.

    python bench/zoo.py [--models a,b] [--flavours k3,k2] [--list] [--cache DIR]

From Python or tests: `from zoo import zoo_path; zoo_path("ResNet50", "k3")`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FLAVOURS = ("k3", "k2")

# model -> input shape (without batch); each is the keras.applications class of that name
MODELS = {
    "MobileNetV2": (224, 224, 3),
    "MobileNetV3Small": (224, 224, 3),
    "ResNet50": (224, 224, 3),
    "VGG16": (224, 224, 3),
    "DenseNet121": (224, 224, 3),
    "InceptionV3": (299, 299, 3),
    "EfficientNetB0": (224, 224, 3),
    "NASNetMobile": (224, 224, 3),
    "ConvNeXtTiny": (224, 224, 3),
}


def cache_dir() -> str:
    return os.environ.get("GRAPHTOOL_ZOO") or os.path.join(os.path.expanduser("~"), ".cache", "graphtool", "zoo")


def entry_path(model: str, flavour: str, cache: str | None = None) -> str:
    return os.path.join(cache or cache_dir(), f"{model}.{flavour}.pb")


def build(model: str):
    """Builder for `graphtool freeze --builder bench/zoo.py:build_<Model>` (tf.keras = active Keras)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    return getattr(tf.keras.applications, model)(weights=None, input_shape=MODELS[model])


def _make_builder(model: str):
    def builder():
        return build(model)
    builder.__name__ = f"build_{model}"
    builder.__doc__ = f"keras.applications.{model}(weights=None), seed 0."
    return builder


for _model in MODELS:
    globals()[f"build_{_model}"] = _make_builder(_model)


def _check(models, flavours):
    unknown = [m for m in models if m not in MODELS] + [f for f in flavours if f not in FLAVOURS]
    if unknown:
        raise ValueError(f"unknown zoo model/flavour: {', '.join(unknown)}; "
                         f"models: {', '.join(MODELS)}; flavours: {', '.join(FLAVOURS)}")


def ensure(models=None, flavours=FLAVOURS, cache: str | None = None) -> list[str]:
    """Build every missing (model, flavour) entry; return all their .pb paths."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from graphtool.freeze import FreezeRequest, freeze_all

    models = list(models or MODELS)
    _check(models, flavours)
    cache = cache or cache_dir()
    os.makedirs(cache, exist_ok=True)
    paths, missing = [], []
    for model in models:
        for flavour in flavours:
            path = entry_path(model, flavour, cache)
            paths.append(path)
            if not (os.path.exists(path) and os.path.exists(os.path.splitext(path)[0] + ".npz")):
                missing.append(FreezeRequest(out=path, builder=f"{os.path.abspath(__file__)}:build_{model}",
                                             reference=True, keras=flavour[1]))
    if missing:
        freeze_all(missing)
    return paths


def zoo_path(model: str, flavour: str = "k3", cache: str | None = None) -> str:
    """Path of a zoo .pb (sidecar and .npz next to it), building it first if needed."""
    return ensure([model], (flavour,), cache)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated (default: all): {','.join(MODELS)}")
    parser.add_argument("--flavours", default=",".join(FLAVOURS), help="comma-separated: k3, k2")
    parser.add_argument("--cache", help="cache directory (default: $GRAPHTOOL_ZOO or ~/.cache/graphtool/zoo)")
    parser.add_argument("--list", action="store_true", help="list entries and whether they are built")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else list(MODELS)
    flavours = tuple(args.flavours.split(","))
    try:
        _check(models, flavours)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for model in models:
            for flavour in flavours:
                path = entry_path(model, flavour, args.cache)
                state = f"{os.path.getsize(path) / 1e6:8.1f} MB" if os.path.exists(path) else "   (not built)"
                print(f"{model:18} {flavour}  {state}  {path}")
        return 0
    started = time.monotonic()
    for path in ensure(models, flavours, args.cache):
        print(f"{os.path.getsize(path) / 1e6:8.1f} MB  {path}")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
