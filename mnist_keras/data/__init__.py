"""The data: MNIST as numpy arrays (the shipped IDX files, any IDX folder, TFDS) and the tf.data pipeline.

Imports nothing from the other packages; only errors and files from the top level.
"""
