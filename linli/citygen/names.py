"""Names, phone numbers and ID numbers, drawn vectorised from Faker's zh_CN vocabularies."""

from __future__ import annotations

import numpy as np
import polars as pl
from faker.providers.company.zh_CN import Provider as CompanyProvider
from faker.providers.person.zh_CN import Provider as PersonProvider
from faker.providers.phone_number.zh_CN import Provider as PhoneProvider

from linli.standards import id_check_char


def _gbk_safe(words) -> np.ndarray:
    """Community offices export some registries in GBK: keep only names it can encode."""
    return np.array([w for w in words if _encodes(w)])


def _encodes(text: str) -> bool:
    try:
        text.encode("gbk")
        return True
    except UnicodeEncodeError:
        return False


SURNAMES = _gbk_safe(PersonProvider.last_names.keys())
SURNAME_WEIGHTS = np.array([PersonProvider.last_names[s] for s in SURNAMES], dtype=float)
SURNAME_WEIGHTS /= SURNAME_WEIGHTS.sum()
GIVEN_MALE = _gbk_safe(PersonProvider.first_names_male)
GIVEN_FEMALE = _gbk_safe(PersonProvider.first_names_female)
# Mongolian personal names as written in Chinese characters; many Mongols in Ordos use no surname.
MONGOLIAN_MALE = np.array(
    "巴特尔 额尔敦 朝鲁 巴雅尔 阿拉坦 宝音 巴图 吉日嘎拉 乌力吉 达来 孟和 毕力格 额日和木 苏和 图门 "
    "那顺 格日勒图 特木尔 布和 哈斯 斯琴毕力格 巴音 敖其尔 乌恩 满都拉".split()
)
MONGOLIAN_FEMALE = np.array(
    "其其格 萨仁 苏日娜 敖登 图雅 斯琴 娜仁 高娃 乌兰 其木格 乌日娜 萨日娜 格日乐 阿拉腾花 "
    "塔娜 琪琪格 乌云 托娅 呼和 包日娜 额尔德尼 诺敏 吉雅 赛罕 明珠".split()
)
MONGOLIAN_SURNAMES = np.array(["", "", "", "包", "白", "韩", "奇", "宝", "鲍", "云"])
PHONE_PREFIXES = np.array([str(p) for p in PhoneProvider.phonenumber_prefixes])
COMPANY_PREFIXES = _gbk_safe(CompanyProvider.company_prefixes)


def person_names(rng: np.random.Generator, male: np.ndarray, mongolian: np.ndarray) -> np.ndarray:
    n = len(male)
    surname = rng.choice(SURNAMES, size=n, p=SURNAME_WEIGHTS)
    given1 = np.where(male, rng.choice(GIVEN_MALE, n), rng.choice(GIVEN_FEMALE, n))
    given2 = np.where(male, rng.choice(GIVEN_MALE, n), rng.choice(GIVEN_FEMALE, n))
    given = np.where(rng.random(n) < 0.6, np.char.add(given1, given2), given1)
    han = np.char.add(surname, given)
    mongol = np.char.add(
        rng.choice(MONGOLIAN_SURNAMES, n),
        np.where(male, rng.choice(MONGOLIAN_MALE, n), rng.choice(MONGOLIAN_FEMALE, n)),
    )
    return np.where(mongolian, mongol, han)


def mobile_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    tail = np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8)
    return np.char.add(rng.choice(PHONE_PREFIXES, n), tail)


def with_id_numbers(people: pl.DataFrame, staff: bool = False) -> pl.DataFrame:
    """Add a unique `id_no` from `origin_code`, `birth_date` and `sex`.

    The sequence is a rank within (origin, birth date, sex) — odd for men, even for women —
    offset per birth day for residents and in the 9xx range for staff, so no two people collide.
    """
    base = pl.lit(450) if staff else (pl.col("birth_date").cast(pl.Int64) * 37) % 400
    rank = pl.int_range(pl.len()).over(["origin_code", "birth_date", "sex"])
    seq = (2 * (base + rank) + (pl.col("sex") == "1").cast(pl.Int64)) % 1000
    first17 = pl.col("origin_code") + pl.col("birth_date").dt.strftime("%Y%m%d") + seq.cast(pl.Utf8).str.zfill(3)
    return people.with_columns(_first17=first17).with_columns(
        id_no=pl.col("_first17") + id_check_char(pl.col("_first17"))
    ).drop("_first17")
