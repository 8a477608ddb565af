"""Reading digits with a trained model: one predictor for every format (predictor.py, over the LiteRT and
SavedModel runners), the no-digit decision, predict and evaluate.

May import data and training (a .keras file is training's format). A .tflite prediction
imports no TensorFlow: litert.py and preprocess.py need only numpy, Pillow and LiteRT.
"""
