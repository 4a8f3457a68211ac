"""Errors that end a command with one clear line and exit status 2."""


class UsageError(Exception):
    """Bad input from the user: an unknown name, a bad number, a missing folder,
    an unreachable hub handle or Ray address. The message is one line that says
    what was wrong and what is accepted."""


class ModuleError(Exception):
    """A backbone module that cannot be used as asked (for example a TF1 Hub
    format module in finetune mode). Inside a trial it becomes status "error"."""
