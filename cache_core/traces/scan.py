"""Compiled byte-scanning primitives shared by the text parsers.

All functions work on a ``uint8`` array and half-open index ranges ``[start, end)``. They are
numba ``@njit`` functions (cached on disk), so the parsers built from them run at C speed
instead of looping over tokens in Python. Errors are returned as integer codes (see
:data:`ERROR_MESSAGES`) because compiled code cannot raise rich exceptions.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = [
    "ERROR_MESSAGES",
    "ERR_EXPECTED_HEX",
    "ERR_EXPECTED_NUMBER",
    "ERR_EXPECTED_OP",
    "ERR_MISSING_FIELD",
    "ERR_OVERFLOW",
    "ERR_TOO_MANY_PAGES",
    "ERR_TRAILING",
    "OK",
    "is_space",
    "line_end",
    "parse_dec",
    "parse_hex",
    "skip_spaces",
    "strip_line",
]

OK = 0
ERR_EXPECTED_NUMBER = 1
ERR_OVERFLOW = 2
ERR_TRAILING = 3
ERR_MISSING_FIELD = 4
ERR_EXPECTED_HEX = 5
ERR_EXPECTED_OP = 6
ERR_TOO_MANY_PAGES = 7

ERROR_MESSAGES: dict[int, str] = {
    ERR_EXPECTED_NUMBER: "expected an unsigned decimal integer",
    ERR_OVERFLOW: "number does not fit in 64 bits",
    ERR_TRAILING: "unexpected text after the last field",
    ERR_MISSING_FIELD: "too few fields",
    ERR_EXPECTED_HEX: "expected a hexadecimal address",
    ERR_EXPECTED_OP: "expected an access type 'l' or 's'",
    ERR_TOO_MANY_PAGES: "block count too large",
}
"""Human-readable message of each error code."""

_U64_DIV10 = np.uint64(1844674407370955161)  # (2**64 - 1) // 10
_U64_MOD10 = np.uint64(5)  # (2**64 - 1) % 10
_U64_DIV16 = np.uint64(0x0FFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def is_space(c: np.uint8) -> bool:
    """Whether a byte is a space, tab or carriage return."""
    return bool(c == 32 or c == 9 or c == 13)


@njit(cache=True)
def line_end(buf: NDArray[np.uint8], start: int) -> int:
    """Index of the newline byte ending the line that begins at ``start`` (or ``len(buf)``)."""
    i = start
    n = buf.shape[0]
    while i < n and buf[i] != 10:
        i += 1
    return i


@njit(cache=True)
def strip_line(buf: NDArray[np.uint8], start: int, end: int) -> tuple[int, int]:
    """Return ``[start, end)`` without leading and trailing spaces, tabs and carriage returns."""
    while start < end and is_space(buf[start]):
        start += 1
    while end > start and is_space(buf[end - 1]):
        end -= 1
    return start, end


@njit(cache=True)
def skip_spaces(buf: NDArray[np.uint8], start: int, end: int) -> int:
    """Index of the first byte in ``[start, end)`` that is not a space or tab (or ``end``)."""
    while start < end and (buf[start] == 32 or buf[start] == 9):
        start += 1
    return start


@njit(cache=True)
def parse_dec(buf: NDArray[np.uint8], start: int, end: int) -> tuple[np.uint64, int, int]:
    """Parse an unsigned decimal integer at ``start``.

    Returns ``(value, index after the digits, error code)``.
    """
    i = start
    value = np.uint64(0)
    if i >= end or buf[i] < 48 or buf[i] > 57:
        return value, i, ERR_EXPECTED_NUMBER
    while i < end and 48 <= buf[i] <= 57:
        digit = np.uint64(buf[i] - 48)
        if value > _U64_DIV10 or (value == _U64_DIV10 and digit > _U64_MOD10):
            return value, i, ERR_OVERFLOW
        value = value * np.uint64(10) + digit
        i += 1
    return value, i, OK


@njit(cache=True)
def parse_hex(buf: NDArray[np.uint8], start: int, end: int) -> tuple[np.uint64, int, int]:
    """Parse a hexadecimal integer, with or without a ``0x`` prefix, at ``start``.

    Returns ``(value, index after the digits, error code)``.
    """
    i = start
    if i + 1 < end and buf[i] == 48 and (buf[i + 1] == 120 or buf[i + 1] == 88):
        i += 2
    value = np.uint64(0)
    first = i
    while i < end:
        c = buf[i]
        if 48 <= c <= 57:
            digit = np.uint64(c - 48)
        elif 97 <= c <= 102:
            digit = np.uint64(c - 87)
        elif 65 <= c <= 70:
            digit = np.uint64(c - 55)
        else:
            break
        if value > _U64_DIV16:
            return value, i, ERR_OVERFLOW
        value = value * np.uint64(16) + digit
        i += 1
    if i == first:
        return value, i, ERR_EXPECTED_HEX
    return value, i, OK
