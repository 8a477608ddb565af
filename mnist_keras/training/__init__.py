"""Training: the model, its settings, the loop, callbacks, precision and strategy, the run folder, evaluation.

May import data (and cli, errors, files); nothing from inference, exporting, serving or reporting.
"""
