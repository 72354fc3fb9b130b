"""The one place that makes text from the cluster displayable.

Node hostnames, labels, task messages and engine errors come from the cluster and are not limited to DNS
characters: they can hold terminal escapes (`ESC ] 0 ; title BEL` retitles a terminal, `ESC [2J` clears it),
NUL, bidirectional overrides that reorder what follows, or Rich/Textual markup. `display()` turns any of it into
plain, printable text: control and bidi characters become visible escapes (`\\x1b`, `\\u202e`), nothing is
removed silently, and the result is never parsed as markup by the widgets (they get `Text`/`Content` objects).
Every widget and every text output goes through it; JSON output keeps the raw values (JSON escapes them).

What is made visible: C0 controls (U+0000-U+001F), DEL, C1 controls (U+0080-U+009F: U+009B is an 8-bit CSI to
some terminals), lone surrogates (U+D800-U+DFFF: what Python makes of bytes that are not UTF-8, `surrogateescape`;
they cannot be encoded, so a strict stdout would raise, and `\\udc9b` written with surrogateescape is the raw byte
0x9b), bidi marks, line and paragraph separators, the BOM. So for any string, `display()` and `printable()` give
text that encodes in strict UTF-8 and holds none of those characters (a Hypothesis test checks it). `display` and
`one_line` also make a newline visible (`\\x0a`): a name holding one must not start a line of its own in
line-oriented output (`snapshot`, `doctor`), where it could forge a line.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embedding/override/isolate marks; line/paragraph separators; BOM
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ud800-\udfff]")
MAX_LENGTH = 400  # a name longer than this is cut (with an ellipsis): no single value may flood a screen


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display(value: object, limit: int = MAX_LENGTH) -> str:
    """Untrusted text as printable text: control characters made visible, at most `limit` characters."""
    text = "" if value is None else str(value)
    text = _UNSAFE.sub(_visible, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ud800-\udfff]")


def printable(value: object) -> str:
    """Like `display`, but keeps line breaks and any length: for whole text outputs and multi-line widgets."""
    return _UNSAFE_KEEP_LINES.sub(_visible, "" if value is None else str(value))


def one_line(value: object) -> str:
    """`display` without the length limit: one line of line-oriented output whose parts come from the cluster
    (a newline inside a name is shown as `\\x0a`, never a line break)."""
    return _UNSAFE.sub(_visible, "" if value is None else str(value))


def cell_for_cell(value: str) -> str:
    """Each unsafe character replaced by one visible one (U+FFFD): for text laid out cell by cell, such as a
    chart's character matrix, where an escape would change the width."""
    return _UNSAFE.sub("\ufffd", value)


class PrintableStream:
    """A text stream that writes everything through `printable`: the one-shot commands' stdout and stderr, so
    no cluster text reaches the terminal raw, whichever line printed it (JSON output is unaffected: json
    escapes control characters itself)."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        self._raw.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)
