"""mnist-keras: a CNN that learns to read handwritten digits, trained with Keras on TensorFlow."""

__version__ = "0.1.0"
