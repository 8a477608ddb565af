"""mnist-keras: a CNN that learns to read handwritten digits, trained with Keras on TensorFlow.

The stages a digit goes through, one package each; a package imports only those before it
(and the shared cli, errors, files), never one after it:

    data <- training <- inference <- exporting <- serving
                                  <- reporting

The modules at this level are the commands (train, evaluate, export, verify, web_export,
predict, serve, report: flags only, each over a library function) and the pieces every
package shares (cli, errors, files). tests/test_layout.py checks all of this from the source.
"""

__version__ = "0.1.0"
