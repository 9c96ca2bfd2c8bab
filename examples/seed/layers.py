"""The seed example's custom layer: what `--custom-objects examples/seed/layers.py` loads.

Keras needs the class to read `model.keras` back; graphtool imports this file
before loading the model, and the frozen graph then holds the layer's
computation (a Mul by 2) like any other op.
"""
import keras


@keras.saving.register_keras_serializable(package="seed")
class TimesTwo(keras.layers.Layer):
    """Doubles its input."""

    def call(self, inputs):
        return inputs * 2.0
