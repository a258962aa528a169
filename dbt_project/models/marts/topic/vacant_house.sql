-- 空置房屋: houses whose water meter reported and showed no use over the whole period.
with water as (
    select house_code, count(*) as readings, sum(consumption) as water_m3
    from {{ ref('meter_reading') }}
    where kind = 'water_meter' and not is_unknown_device
    group by house_code
),

houses as (
    select * from {{ ref('house') }}
)

select h.house_code, h.grid_code, h.community_code, h.registered_residents, w.readings, w.water_m3
from houses h
join water w using (house_code)
where abs(w.water_m3) < 1e-9
