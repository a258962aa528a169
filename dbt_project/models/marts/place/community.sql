-- 社区: one row per community, with its street/town and banner from GB/T 2260.
with communities as (
    select * from {{ ref('stg_gis__community') }}
),

divisions as (
    select d.*, e.name_en from {{ ref('ordos_divisions') }} d left join {{ ref('code_division_en') }} e using (code)
)

select
    c.community_code,
    c.community_name,
    c.kind,
    c.street_code,
    street.name as street_name,
    street.name_en as street_name_en,
    street.level as street_level,
    c.banner_code,
    banner.name as banner_name,
    banner.name_en as banner_name_en,
    c.centre_lon,
    c.centre_lat,
    c.side_m
from communities c
left join divisions street on street.code = c.street_code
left join divisions banner on banner.code = c.banner_code
