"""The people library's ground: households and residents (实有人口) per GB/T 31000."""

from __future__ import annotations

import numpy as np
import polars as pl

from linli.citygen.names import mobile_numbers, person_names, with_id_numbers
from linli.citygen.random import stream

# Household sizes 1-5; group rentals (群租, 6-10 people) are rare and always over-occupied.
SIZE_P = np.array([0.19, 0.30, 0.29, 0.13, 0.09])
GROUP_RENTAL_SHARE = 0.004
ELDERLY_ALONE_SHARE_OF_SINGLES = 0.3
ELDERLY_AGE = 65

# GB/T 4761 family relation codes used by the registry.
HOUSEHOLDER, SPOUSE, SON, DAUGHTER, PARENT, OTHER = "02", "10", "20", "30", "50", "99"
# GB 3304 ethnicity codes with Ordos-like shares.
ETHNICITIES = np.array(["01", "02", "03", "11", "31"])
ETHNICITY_P = np.array([0.78, 0.18, 0.02, 0.015, 0.005])
POPULATION_TYPES = np.array(["户籍", "流动", "境外"])
POPULATION_P = np.array([0.78, 0.215, 0.005])
# Birthplace codes of floating residents: neighbouring provinces and other Inner Mongolian leagues.
FLOATING_ORIGINS = np.array(
    ["610802", "610881", "140602", "130102", "410102", "620102", "640104", "150203", "150102", "152502"]
)
SPECIAL_GROUPS = {"残疾人": 0.02, "低保对象": 0.03, "优抚对象": 0.005}
ELDERLY_ALONE_TAG = "独居老人"


def household_sizes(seed: int, community_index: int, residents: int) -> np.ndarray:
    """Sizes of the households of one community, adding up to exactly `residents`."""
    rng = stream(seed, "households", community_index)
    n = residents  # an upper bound on the number of households
    sizes = rng.choice(np.arange(1, 6), n, p=SIZE_P)
    group = rng.random(n) < GROUP_RENTAL_SHARE
    sizes = np.where(group, rng.integers(6, 11, n), sizes)
    total = np.cumsum(sizes)
    k = int(np.searchsorted(total, residents))
    sizes = sizes[: k + 1].copy()
    sizes[-1] -= total[k] - residents
    return sizes


def household_counts(seed: int):
    def count(residents_per_community: np.ndarray) -> np.ndarray:
        return np.array([len(household_sizes(seed, i, r)) for i, r in enumerate(residents_per_community)])

    return count


def build_people(seed: int, start_date: np.datetime64, communities: pl.DataFrame, houses: pl.DataFrame):
    """Residents of every community and the houses they live in; returns (residents, houses)."""
    parts, house_parts = [], []
    household_base = 0
    house_groups = houses.partition_by("community_code", as_dict=True, maintain_order=True)
    for i, c in enumerate(communities.iter_rows(named=True)):
        sizes = household_sizes(seed, i, c["residents"])
        people, c_houses = _community_people(
            seed, i, c, sizes, house_groups[(c["community_code"],)], start_date, household_base
        )
        household_base += len(sizes)
        parts.append(people)
        house_parts.append(c_houses)
    residents = pl.concat(parts)
    return _assign_id_numbers(residents), pl.concat(house_parts)


def _community_people(seed, i, c, sizes, houses, start_date, household_base):
    rng = stream(seed, "people", i)
    n_hh = len(sizes)
    n = int(sizes.sum())
    hh = np.repeat(np.arange(n_hh), sizes)
    k = np.arange(n) - np.searchsorted(hh, hh)  # position within the household
    size = sizes[hh]
    group = size >= 6

    single = sizes == 1
    elderly_alone_hh = single & (rng.random(n_hh) < ELDERLY_ALONE_SHARE_OF_SINGLES)
    head_age = np.where(
        elderly_alone_hh, rng.integers(ELDERLY_AGE, 93, n_hh), np.where(single, rng.integers(20, 65, n_hh), rng.integers(25, 76, n_hh))
    )
    head_male = rng.random(n_hh) < 0.6
    hh_pop = rng.choice(POPULATION_TYPES, n_hh, p=POPULATION_P)
    hh_pop = np.where(sizes >= 6, "流动", np.where(elderly_alone_hh, "户籍", hh_pop))
    hh_eth = rng.choice(ETHNICITIES, n_hh, p=ETHNICITY_P)

    relation = np.select(
        [k == 0, group, k == 1, k <= 3],
        [HOUSEHOLDER, OTHER, SPOUSE, "child"],
        default=PARENT,
    )
    male = np.select(
        [k == 0, relation == SPOUSE],
        [head_male[hh], ~head_male[hh]],
        default=rng.random(n) < 0.5,
    )
    relation = np.where(relation == "child", np.where(male, SON, DAUGHTER), relation)
    a0 = head_age[hh]
    age = np.select(
        [k == 0, group, relation == SPOUSE, (relation == SON) | (relation == DAUGHTER)],
        [a0, rng.integers(18, 51, n), a0 + rng.integers(-4, 5, n), a0 - rng.integers(22, 36, n)],
        default=a0 + rng.integers(22, 33, n),
    )
    age = np.clip(age, 0, 100)
    birth = start_date - (age * 365.25).astype("timedelta64[D]") - rng.integers(1, 365, n).astype("timedelta64[D]")

    pop = hh_pop[hh]
    banner_code = c["banner_code"]
    origin = np.where(pop == "流动", rng.choice(FLOATING_ORIGINS, n), banner_code)
    mongolian = hh_eth[hh] == "02"

    # Households take the first houses of a shuffled list; group rentals get small flats.
    order = rng.permutation(len(houses))
    houses = houses[order]
    occupied = houses.head(n_hh).with_columns(
        household_index=pl.Series(np.arange(n_hh)),
        household_size=pl.Series(sizes),
    )
    area = np.where(sizes >= 6, np.round(rng.uniform(40, 70, n_hh), 1), occupied["area_m2"].to_numpy())
    rented = hh_pop != "户籍"
    occupied = occupied.with_columns(area_m2=pl.Series(area), rented=pl.Series(rented))
    vacant = houses.slice(n_hh).with_columns(
        household_index=pl.lit(None, pl.Int64), household_size=pl.lit(0, pl.Int64), rented=pl.lit(False)
    )
    houses_out = pl.concat([occupied, vacant]).drop("household_index").sort("house_code")
    hh_house = occupied["house_code"].to_numpy()
    hh_grid = occupied["grid_code"].to_numpy()
    hh_address = occupied["address"].to_numpy()

    special = np.full(n, "", dtype=object)
    special[elderly_alone_hh[hh]] = ELDERLY_ALONE_TAG
    for tag, share in SPECIAL_GROUPS.items():
        hit = rng.random(n) < share
        special[hit] = np.where(special[hit] == "", tag, special[hit] + "、" + tag)

    phone = np.where((age >= 14) & (rng.random(n) < 0.95), mobile_numbers(rng, n), "")
    foreign = pop == "境外"
    moved_in = start_date - rng.integers(30, 15 * 365, n_hh).astype("timedelta64[D]")

    people = pl.DataFrame(
        {
            "community_code": c["community_code"],
            "grid_code": hh_grid[hh],
            "house_code": hh_house[hh],
            "address": hh_address[hh],
            "household_no": (150_000_000 + household_base + hh).astype(str),
            "household_size": size,
            "relation": relation,
            "sex": np.where(male, "1", "2"),
            "birth_date": birth,
            "age": age,
            "ethnicity": hh_eth[hh],
            "population_type": pop,
            "id_type": np.where(foreign, "护照", "居民身份证"),
            "origin_code": origin,
            "name": person_names(rng, male, mongolian),
            "phone": phone,
            "special_groups": special.astype(str),
            "moved_in": moved_in[hh],
            "registered_here": np.where(pop == "户籍", np.where(rng.random(n) < 0.9, "是", "否"), "否"),
            "nationality": np.where(foreign, "蒙古国", "中国"),
        }
    )
    return people, houses_out


def _assign_id_numbers(residents: pl.DataFrame) -> pl.DataFrame:
    """Resident IDs per GB 11643; people from abroad carry a passport number instead, unique city-wide."""
    residents = with_id_numbers(residents)
    foreign = (residents["id_type"] == "护照").to_numpy()
    # k -> (k * 48271 + 7340033) mod 10^8 is a bijection (48271 is prime to 10^8): numbers that
    # look scattered yet never repeat, however large the city
    numbers = (np.arange(foreign.sum(), dtype=np.int64) * 48271 + 7_340_033) % 10**8
    passports = pl.Series(numbers).cast(pl.Utf8).str.zfill(8)
    id_no = residents["id_no"].to_numpy().astype(object)
    id_no[foreign] = ("E" + passports).to_numpy()
    return residents.with_columns(id_no=pl.Series(id_no, dtype=pl.Utf8))
