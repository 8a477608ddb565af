"""Export: the SavedModel, the .tflite files with their metadata, the camera model, the web page, verification.

What export writes is one table, artifacts.ARTIFACTS; steps.py runs it.

May import data, training and inference; nothing from serving or reporting. Also holds
what TF Serving reads beside a SavedModel (serving_files.py) and the page's files (web/).
"""
