"""Export: the SavedModel, the .tflite files with their metadata, the camera model, the web page, verification.

May import data, training and inference; nothing from serving or reporting. Also holds
what TF Serving reads beside a SavedModel (serving_files.py) and the page's files (web/).
"""
