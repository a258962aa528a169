"""National standards the platform validates against, defined once.

The generator uses these to make valid (and deliberately invalid) codes; ingest and the
quality suites use the same functions and patterns to check them, so a rule lives in one place.
Array versions work on whole NumPy columns: the generator and validators never loop per row.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

# GB 11643: 17 digits + ISO 7064 MOD 11-2 check character.
GB11643_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
GB11643_CHECK = np.array(list("10X98765432"))
GB11643_PATTERN = r"^[1-9]\d{5}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[0-9X]$"

# GB 32100: unified social credit code, 18 characters over a 31-symbol alphabet.
GB32100_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB32100_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
GB32100_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
# GB 11714 organisation code (characters 9-17 of a credit code) has its own check character.
GB11714_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)

MOBILE_PATTERN = r"^1[3-9]\d{9}$"
# Ordinary plates (province + letter + 5) and new-energy plates (province + letter + 6).
PLATE_PATTERN = r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$"
DIVISION_12_PATTERN = r"^15\d{10}$"

_ALPHA_VALUE = {c: i for i, c in enumerate(GB32100_ALPHABET)}


def _digits(codes: np.ndarray, width: int) -> np.ndarray:
    """Rows of `width` ASCII characters as an (n, width) uint8 matrix."""
    fixed = np.asarray(codes, dtype=f"S{width}")
    return np.frombuffer(fixed.tobytes(), dtype=np.uint8).reshape(len(fixed), width)


def id_check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character for each 17-digit string."""
    digits = _digits(first17, 17).astype(np.int64) - ord("0")
    return GB11643_CHECK[(digits @ GB11643_WEIGHTS) % 11]


def id_is_valid(column: str | pl.Expr) -> pl.Expr:
    """Polars expression: the value is an 18-character resident ID with a correct check character."""
    col = pl.col(column) if isinstance(column, str) else column
    weighted = pl.sum_horizontal(
        col.str.slice(i, 1).cast(pl.Int64, strict=False) * int(w) for i, w in enumerate(GB11643_WEIGHTS)
    )
    expected = pl.lit(pl.Series(list(GB11643_CHECK))).get(weighted % 11)
    return (col.str.contains(GB11643_PATTERN) & (col.str.slice(17, 1) == expected)).fill_null(False)


def gb11714_check(codes8: np.ndarray) -> np.ndarray:
    """GB 11714 check character for each 8-character organisation code body."""
    values = np.vectorize(_ALPHA_VALUE.__getitem__, otypes=[np.int64])(
        _digits(codes8, 8).view("S1").astype(str)
    )
    check = 11 - (values @ GB11714_WEIGHTS) % 11
    return np.where(check == 10, "X", np.where(check == 11, "0", check.astype(str)))


def credit_check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 32100 check character for each 17-character credit-code body."""
    values = np.vectorize(_ALPHA_VALUE.__getitem__, otypes=[np.int64])(
        _digits(first17, 17).view("S1").astype(str)
    )
    check = (31 - (values @ GB32100_WEIGHTS) % 31) % 31
    return np.array(list(GB32100_ALPHABET))[check]


def credit_code_is_valid(column: str | pl.Expr) -> pl.Expr:
    """Polars expression: the value is a GB 32100 code with a correct check character."""
    col = pl.col(column) if isinstance(column, str) else column
    alphabet = {c: i for i, c in enumerate(GB32100_ALPHABET)}
    weighted = pl.sum_horizontal(
        col.str.slice(i, 1).replace_strict(alphabet, default=None, return_dtype=pl.Int64) * int(w)
        for i, w in enumerate(GB32100_WEIGHTS)
    )
    expected = pl.lit(pl.Series(list(GB32100_ALPHABET))).get((31 - weighted % 31) % 31)
    return (col.str.contains(GB32100_PATTERN) & (col.str.slice(17, 1) == expected)).fill_null(False)


