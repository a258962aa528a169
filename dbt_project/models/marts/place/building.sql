-- 楼栋: one row per building, located by a point.
with buildings as (
    select * from {{ ref('stg_gis__building') }}
),

estates as (
    select * from {{ ref('stg_gis__estate') }}
)

select
    b.building_code,
    b.building_no,
    b.estate_code,
    e.estate_name,
    b.grid_code,
    b.community_code,
    b.floors,
    b.units,
    b.lon,
    b.lat
from buildings b
left join estates e using (estate_code)
