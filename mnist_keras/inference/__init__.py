"""Reading digits with a trained model: picture preprocessing, the LiteRT and SavedModel runners, predict.

May import data and training (a .keras file is training's format). A .tflite prediction
imports no TensorFlow: litert.py and preprocess.py need only numpy, Pillow and LiteRT.
"""
