"""National standards, defined once.

The constants here drive both sides: the generator computes check characters with the polars
expressions below, and every validator (ingest, the quality suites, tests) uses the DuckDB
macros that `ingest.rules` builds from the same constants.
"""

from __future__ import annotations

import polars as pl

# GB 11643: 17 digits + ISO 7064 MOD 11-2 check character.
GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CHECK = "10X98765432"
GB11643_PATTERN = r"^[1-9]\d{5}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[0-9X]$"

# GB 32100: unified social credit code, 18 characters over a 31-symbol alphabet;
# characters 9-17 are a GB 11714 organisation code with a check character of its own.
GB32100_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB32100_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
GB32100_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

MOBILE_PATTERN = r"^1[3-9]\d{9}$"
# Ordinary plates (province + letter + 5) and new-energy plates (province + letter + 6).
PLATE_PATTERN = r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}$"
DIVISION_12_PATTERN = r"^15\d{10}$"


def _alphabet_value(col: pl.Expr, i: int) -> pl.Expr:
    return col.str.slice(i, 1).replace_strict({c: v for v, c in enumerate(GB32100_ALPHABET)}, return_dtype=pl.Int64)


def _char(alphabet: str, index: pl.Expr) -> pl.Expr:
    return pl.lit(alphabet).str.slice(index, 1)


def id_check_char(first17: pl.Expr) -> pl.Expr:
    """GB 11643 check character of a 17-digit string."""
    total = pl.sum_horizontal(first17.str.slice(i, 1).cast(pl.Int64) * w for i, w in enumerate(GB11643_WEIGHTS))
    return _char(GB11643_CHECK, total % 11)


def org_code_check_char(first8: pl.Expr) -> pl.Expr:
    """GB 11714 check character of an 8-character organisation code body."""
    check = 11 - pl.sum_horizontal(_alphabet_value(first8, i) * w for i, w in enumerate(GB11714_WEIGHTS)) % 11
    return pl.when(check == 10).then(pl.lit("X")).when(check == 11).then(pl.lit("0")).otherwise(check.cast(pl.Utf8))


def credit_check_char(first17: pl.Expr) -> pl.Expr:
    """GB 32100 check character of a 17-character credit-code body."""
    total = pl.sum_horizontal(_alphabet_value(first17, i) * w for i, w in enumerate(GB32100_WEIGHTS))
    return _char(GB32100_ALPHABET, (31 - total % 31) % 31)


def _checked(col: pl.Expr, pattern: str, check_char, body_length: int) -> pl.Expr:
    # Only well-formed values reach the check-character arithmetic (others would not parse).
    well_formed = col.str.contains(pattern).fill_null(False)
    body = pl.when(well_formed).then(col.str.slice(0, body_length)).otherwise(pl.lit("0" * body_length))
    return (well_formed & (col.str.slice(body_length, 1) == check_char(body))).fill_null(False)


def id_number_valid(col: pl.Expr) -> pl.Expr:
    """GB 11643: the form, then the check character (the same rule as the `gb11643_valid` macro)."""
    return _checked(col, GB11643_PATTERN, id_check_char, 17)


def credit_code_valid(col: pl.Expr) -> pl.Expr:
    """GB 32100: the form, then the check character (the same rule as the `gb32100_valid` macro)."""
    return _checked(col, GB32100_PATTERN, credit_check_char, 17)
