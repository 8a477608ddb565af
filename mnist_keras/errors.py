"""The one exception type that reaches the user as a single line."""


class InputError(ValueError):
    """Bad input from the user (a flag, a file, a folder): not a bug in this code.

    Entry points print its message as one line and exit non-zero, without a traceback,
    so the message must name the file or value and say what is wrong with it.
    """
