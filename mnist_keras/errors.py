"""The one exception type that reaches the user as a single line."""


class InputError(ValueError):
    """Bad input from the user (a flag, a file, a folder): not a bug in this code.

    Entry points print its message as one line and exit non-zero, without a traceback,
    so the message must name the file or value and say what is wrong with it.
    """


class NoInk(InputError):
    """A picture in which preprocessing finds no ink (blank, one colour, almost no contrast): its
    readers answer "no digit" (no_digit.py) rather than an error; other callers see an InputError."""


def printable(text: object) -> str:
    """`text` with each character a terminal acts on (newline, escape codes, other controls) as a backslash
    escape: a file name printed in a line can neither end it nor forge another (`error: ...`) or colour it."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (or its type): what a one-line error quotes."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
