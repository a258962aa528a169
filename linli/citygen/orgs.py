"""The organisation library's ground: property companies, merchants, social and party organisations, grid staff."""

from __future__ import annotations

import numpy as np
import polars as pl

from linli.citygen.names import COMPANY_PREFIXES, mobile_numbers, person_names, with_id_numbers
from linli.citygen.random import stream
from linli.standards import GB32100_ALPHABET, credit_check_char, org_code_check_char

# GB 32100 registration authority + organisation type per kind of organisation.
KINDS = {
    "property_company": ("91", "物业服务有限公司"),
    "merchant": ("92", "商行"),
    "social_organization": ("52", "协会"),
    "party_organization": ("13", "党支部"),
}
ORG_ALPHABET = np.array(list(GB32100_ALPHABET))


def credit_codes(rng: np.random.Generator, prefix: np.ndarray, division: np.ndarray) -> pl.Series:
    n = len(prefix)
    body8 = np.array(["".join(r) for r in rng.choice(ORG_ALPHABET[:10], (n, 8))])
    codes = pl.DataFrame({"prefix": prefix, "division": division, "body8": body8}).select(
        first17=pl.col("prefix") + pl.col("division") + pl.col("body8") + org_code_check_char(pl.col("body8"))
    )
    return codes.select(pl.col("first17") + credit_check_char(pl.col("first17")))["first17"]


def build_organizations(seed: int, communities: pl.DataFrame, estates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Organisations, and estates with the property company that manages each."""
    rng = stream(seed, "organizations")
    n_prop = max(2, len(estates) // 8)
    comm = communities.select("community_code", "banner_code")
    n_comm = len(comm)
    kinds = np.concatenate(
        [
            np.full(n_prop, "property_company"),
            np.full(n_comm * 3, "merchant"),
            np.full(n_comm, "social_organization"),
            np.full(n_comm, "party_organization"),
        ]
    )
    home = np.concatenate(
        [rng.integers(0, n_comm, n_prop), np.repeat(np.arange(n_comm), 3), np.arange(n_comm), np.arange(n_comm)]
    )
    comm_codes = comm["community_code"].to_numpy()[home]
    prefix = np.array([KINDS[k][0] for k in kinds])
    suffix = np.array([KINDS[k][1] for k in kinds])
    codes = credit_codes(rng, prefix, comm["banner_code"].to_numpy()[home])
    names = np.char.add(np.char.add("鄂尔多斯市", rng.choice(COMPANY_PREFIXES, len(kinds))), suffix)
    names = np.where(
        kinds == "party_organization", np.char.add(communities["community_name"].to_numpy()[home], "党支部"), names
    )
    male = rng.random(len(kinds)) < 0.6
    orgs = pl.DataFrame(
        {
            "credit_code": codes.to_numpy(),
            "org_name": names,
            "org_kind": kinds,
            "community_code": comm_codes,
            "legal_rep_name": person_names(rng, male, rng.random(len(kinds)) < 0.15),
            "legal_rep_phone": mobile_numbers(rng, len(kinds)),
            "founded": np.datetime64("2000-01-01") + rng.integers(0, 8000, len(kinds)).astype("timedelta64[D]"),
        }
    ).unique("credit_code", keep="first", maintain_order=True)
    props = orgs.filter(pl.col("org_kind") == "property_company")["credit_code"].to_numpy()
    estates = estates.with_columns(property_company_code=pl.Series(rng.choice(props, len(estates))))
    return orgs, estates


def build_grid_staff(seed: int, grids: pl.DataFrame, communities: pl.DataFrame, start_date) -> pl.DataFrame:
    """One full-time grid worker per grid, plus a grid head (网格长) per community."""
    rng = stream(seed, "grid-staff")
    n_grid = len(grids)
    n_comm = len(communities)
    grid_codes = np.concatenate([grids["grid_code"].to_numpy(), communities["community_code"].to_numpy()])
    comm_codes = np.concatenate([grids["community_code"].to_numpy(), communities["community_code"].to_numpy()])
    banner = dict(zip(communities["community_code"].to_list(), communities["banner_code"].to_list()))
    n = n_grid + n_comm
    male = rng.random(n) < 0.45
    age = rng.integers(24, 56, n)
    birth = (
        np.datetime64(start_date)
        - (age * 365.25).astype("timedelta64[D]")
        - rng.integers(0, 365, n).astype("timedelta64[D]")
    )
    origin = np.array([banner[c] for c in comm_codes])
    staff = pl.DataFrame(
        {
            "staff_id": np.char.add("GS", np.char.zfill(np.arange(1, n + 1).astype(str), 6)),
            "name": person_names(rng, male, rng.random(n) < 0.15),
            "phone": mobile_numbers(rng, n),
            "role": np.where(np.arange(n) < n_grid, "专职网格员", "网格长"),
            "grid_code": np.where(np.arange(n) < n_grid, grid_codes, ""),
            "community_code": comm_codes,
            "origin_code": origin,
            "birth_date": birth,
            "sex": np.where(male, "1", "2"),
        }
    )
    return with_id_numbers(staff, staff=True).drop("origin_code", "birth_date")
