-- 房屋: one row per house, with who is registered there (实有人口) and whether it is rented.
with houses as (
    select * from {{ ref('stg_gis__house') }}
),

registered as (
    select house_code, count(*) as residents, count(distinct household_no) as households
    from {{ ref('stg_community_office__registry') }}
    group by house_code
)

select
    h.house_code,
    h.unit_code,
    h.building_code,
    h.estate_code,
    h.grid_code,
    h.community_code,
    h.floor,
    h.room_no,
    h.area_m2,
    h.use,
    h.ownership,
    h.rented,
    coalesce(r.residents, 0) as registered_residents,
    coalesce(r.households, 0) as registered_households,
    coalesce(r.residents, 0) > 0 as is_registered_occupied
from houses h
left join registered r using (house_code)
