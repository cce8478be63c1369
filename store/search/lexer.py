"""Tokens of MLflow's search filter language (a small subset of SQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from runstream.base.errors import InvalidRequest


class InvalidSearch(InvalidRequest):
    """Every malformed filter, order_by, page token or search argument raises this, with the reason."""


class Tok(Enum):
    WORD = "word"  # bare name or keyword: metrics, acc, AND, LIKE, 1acc
    QNAME = "`name`"  # backtick-quoted name
    STRING = "'string'"
    DQSTRING = '"string"'  # a string value, or a quoted name (MLflow accepts both)
    NUMBER = "number"
    OP = "comparator"  # = != < <= > >= (others are rejected by the parser)
    DOT = "."
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    END = "end of input"


@dataclass(frozen=True)
class Token:
    kind: Tok
    text: str  # the value: unquoted for quoted kinds, verbatim otherwise
    pos: int
    spaced: bool  # whitespace (or the start of input) precedes it

    def describe(self) -> str:
        if self.kind is Tok.END:
            return "end of input"
        source = self.source()
        shown = source if len(source) <= 40 else source[:37] + "..."  # messages echo input: keep them short
        return f"{shown!r} at position {self.pos}"

    def source(self) -> str:
        return {Tok.QNAME: f"`{self.text}`", Tok.STRING: f"'{self.text}'", Tok.DQSTRING: f'"{self.text}"'}.get(
            self.kind, self.text
        )


# A number must not run into a name character: `1e` or `1_000` are words, not numbers.
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")
_WORD = re.compile(r"\w+")
_OP = re.compile(r"[<>=!]+")
_SPACE = re.compile(r"\s+")
_QUOTES = {"'": Tok.STRING, '"': Tok.DQSTRING, "`": Tok.QNAME}
_PUNCT = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA}
_NAMES = (Tok.WORD, Tok.QNAME, Tok.DQSTRING)


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A literal opened at `start`; a doubled quote stands for one quote (standard SQL).
    Returns the unquoted value and the index after the closing quote."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        end = text.find(quote, i)
        if end < 0:
            raise InvalidSearch(f"unterminated {quote} quote starting at position {start}")
        parts.append(text[i:end])
        if text.startswith(quote, end + 1):
            parts.append(quote)
            i = end + 2
        else:
            return "".join(parts), end + 1


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, spaced = 0, True
    while True:
        if m := _SPACE.match(text, i):
            i, spaced = m.end(), True
        if i >= len(text):
            tokens.append(Token(Tok.END, "", i, spaced))
            return tokens
        prev = tokens[-1] if tokens else None
        # After `name.` comes a key segment, which may start with digits (metrics.1st); a `.` right
        # after a name joins names, elsewhere it can only start a number (.5).
        after_dot = prev is not None and prev.kind is Tok.DOT and not spaced
        joins = prev is not None and prev.kind in _NAMES and not spaced
        c = text[i]
        if c in _QUOTES:
            value, end = _quoted(text, i)
            token = Token(_QUOTES[c], value, i, spaced)
        elif c in _PUNCT:
            token, end = Token(_PUNCT[c], c, i, spaced), i + 1
        elif c == "." and joins:
            token, end = Token(Tok.DOT, c, i, spaced), i + 1
        elif not after_dot and (m := _NUMBER.match(text, i)):
            token, end = Token(Tok.NUMBER, m.group(), i, spaced), m.end()
        elif m := _WORD.match(text, i):
            token, end = Token(Tok.WORD, m.group(), i, spaced), m.end()
        elif m := _OP.match(text, i):
            token, end = Token(Tok.OP, m.group(), i, spaced), m.end()
        elif c == ".":
            raise InvalidSearch(f"unexpected '.' at position {i}: write keys without spaces, e.g. metrics.acc")
        else:
            raise InvalidSearch(f"unexpected character {c!r} at position {i}")
        tokens.append(token)
        i, spaced = end, False
