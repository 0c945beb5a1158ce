"""Library errors. The CLI turns these (and only these) into click errors."""

from __future__ import annotations


class RLScaleError(Exception):
    """Base class for every error rlscale raises on purpose."""


class InputError(RLScaleError, ValueError):
    """Bad user input: names the file, the row/line, the field and what was expected.

    Build the message with :func:`input_error` so every one reads the same way.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.field = field


def input_error(what: str, *, path: object = None, line: int | None = None,
                field: str | None = None, expected: str | None = None) -> InputError:
    """Return an :class:`InputError` whose message reads ``FILE, line N, column 'X': WHAT (expected E)``."""
    where = []
    if path is not None:
        where.append(str(path))
    if line is not None:
        where.append(f"line {line}")
    if field is not None:
        where.append(f"column {field!r}")
    msg = ", ".join(where) + ": " + what if where else what
    if expected:
        msg += f" (expected {expected})"
    return InputError(msg, path=None if path is None else str(path), line=line, field=field)


class StoreError(RLScaleError):
    """A store operation that cannot proceed (conflicting run, missing run, unreadable store)."""


class DamagedRunWarning(UserWarning):
    """A damaged run in a store that a reader skipped (see :mod:`rlscale.store.damage`)."""
