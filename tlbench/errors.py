"""Errors that end a command with one clear line, and the one way an
exception becomes that line."""


class UsageError(Exception):
    """Bad input from the user: an unknown name, a bad number, a missing folder,
    an unreachable hub handle or Ray address. The message is one line that says
    what was wrong and what is accepted; the command exits with status 2."""


class ResultsUnwritable(Exception):
    """A run's files can't be written (a full disk, a lost folder): the run
    stops with one line and exit status 3; what was written is intact."""


class ModuleError(Exception):
    """A backbone module that cannot be used as asked (for example a TF1 Hub
    format module of an architecture tlbench can't convert, in finetune mode).
    Inside a trial it becomes status "error"."""


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An exception's message (or any text) as one line of at most `limit`
    characters: whitespace runs, newlines included, become one space; an
    empty message becomes the exception's type name."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# TensorFlow's errors from a tf.function start with this, then where the failed
# op was defined (indented stack lines), then what went wrong.
_GRAPH_ERROR = "Graph execution error:"
_WHERE = ("Detected at node", "<stack traces unavailable>")  # what may follow it before the error itself


def described(error: BaseException, limit: int = 500) -> str:
    """`Type: the line of the message that says what went wrong`: what a
    record's `error` field holds. TensorFlow's messages go on with graph and
    stack details after it; an error from a compiled step puts "Graph
    execution error:" and where the op was defined first, so its first line
    after those (e.g. `OOM when allocating tensor with shape[...]`) is taken."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if lines and lines[0].strip() == _GRAPH_ERROR:
        told = [line for line in lines[1:] if not line[0].isspace() and not line.startswith(_WHERE)]
        lines = told or lines
    return f"{type(error).__name__}: {one_line(lines[0] if lines else '', limit)}"


def os_reason(error: OSError) -> str:
    """What an OSError says went wrong (`No space left on device`), without
    its errno and path: the message around it names the file."""
    return error.strerror or one_line(error)
