"""Commands the runbook prints, and the names and paths it shows: one way each.

Why one module: a command printed as advice (a gate's retry, a manifest's resume, ``why``'s
fill command) is pasted into a shell exactly as printed, so every argument must survive the
shell whatever the path holds (a space, ``ü €``, a quote): ``command`` quotes each argument
with ``shlex.quote`` (``shlex.join``). And a name or path printed to a terminal must never drive
it: ``show`` escapes control characters (an ``ESC`` or ``BEL`` in a folder name would otherwise
set the terminal's title or colours), keeping printable non-ASCII text as it is.
"""
from __future__ import annotations

import shlex
import unicodedata
from os import PathLike
from typing import Union

Arg = Union[str, "PathLike[str]", int]

# Unicode categories that move the cursor, change colours or reorder text when printed: controls (C0, DEL, C1),
# format characters (bidi overrides, zero-width joiners) and the line/paragraph separators
_UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape_char(ch: str) -> str:
    """``\\n``, ``\\x1b``, ``\\u202e``: the Python/ANSI-C spelling of one unsafe character."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
    if ch in named:
        return named[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def show(value: object, keep_lines: bool = False) -> str:
    """``value`` as text safe to print to a terminal: control and format characters escaped
    (``\\x1b``, ``\\n``), backslashes doubled only where needed to keep the escapes unambiguous.
    ``keep_lines`` keeps newlines and tabs (a message of several lines).

    Every archive path, run id and report path the runbook prints goes through here."""
    text = str(value)
    kept = "\n\t" if keep_lines else ""
    unsafe = lambda ch: ch not in kept and _unsafe(ch)  # noqa: E731
    if not any(unsafe(ch) for ch in text):
        return text
    return "".join(_escape_char(ch) if unsafe(ch) else ("\\\\" if ch == "\\" else ch) for ch in text)


def quote(arg: Arg) -> str:
    """One argument as a shell word. ``shlex.quote`` for printable text; an argument holding a control
    character is written in ANSI-C quoting (``$'…\\x1b…'``, bash/zsh/ksh), which both runs as printed
    and cannot drive the terminal it is printed to."""
    text = str(arg.__fspath__() if isinstance(arg, PathLike) else arg)
    if not any(_unsafe(ch) for ch in text):
        return shlex.quote(text)
    body = "".join(_escape_char(ch) if _unsafe(ch) else "\\\\" if ch == "\\" else "\\'" if ch == "'" else ch
                   for ch in text)
    return f"$'{body}'"


def command(*args: Arg) -> str:
    """A command line as the runbook prints it: each argument quoted (``shlex.join``).

    ``command("runbook", "resume", run_id, "--archive-dir", path)`` is what every printed advice
    is built with, so it runs as printed whatever the path holds."""
    return " ".join(quote(a) for a in args)


def runbook(*args: Arg) -> str:
    """``runbook ARGS…`` quoted: the advice commands all start with the CLI's name."""
    return command("runbook", *args)


def and_then(*commands: str) -> str:
    """Commands (each already built with ``command``) joined by ``&&``: run the next only if one succeeded."""
    return " && ".join(c for c in commands if c)
