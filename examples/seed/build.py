"""Build the bundled seed model and save it as examples/seed/model.keras.

The seed user's scenario: a Keras Functional model with batch norm, Dropout and
a custom layer, saved with ``model.save``.  Weights are random (seed 0) with
non-trivial batch-norm statistics, so a conversion that mishandles any layer
shows up in the numbers.  ``make demo`` converts the committed file:

    graphtool convert examples/seed/model.keras -o out/seed --custom-objects examples/seed/layers.py

Regenerate it with ``python examples/seed/build.py`` (Keras 3).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def build_model():
    """The Functional model: conv -> batch norm -> ReLU -> TimesTwo -> pool -> Dropout -> dense."""
    import keras

    sys.path.insert(0, HERE)
    from layers import TimesTwo

    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(image)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = TimesTwo(name="times_two")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(image, probs, name="seed")
    rng = np.random.default_rng(0)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(size=8),
                                       rng.normal(size=8), rng.uniform(0.5, 2.0, 8)])
    return model


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "model.keras")
    build_model().save(target)
    print(f"wrote {target} ({os.path.getsize(target) // 1024} KB)")
