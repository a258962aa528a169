-- 房屋画像: one wide row per house — registered occupants, metered use and the tags it carries.
with houses as (
    select * from {{ ref('house') }}
),

use as (
    select house_code,
           sum(consumption) filter (where kind = 'water_meter' and not is_backwards) as water_m3,
           sum(consumption) filter (where kind = 'electricity_meter' and not is_backwards) as electricity_kwh,
           sum(consumption) filter (where kind = 'gas_meter' and not is_backwards) as gas_m3
    from {{ ref('meter_reading') }}
    group by house_code
),

tags as (
    select house_code, 'vacant' as tag from {{ ref('vacant_house') }}
    union all select house_code, 'overcrowded' from {{ ref('overcrowded_house') }}
    union all select house_code, 'meter_leak' from {{ ref('meter_leak') }}
),

vehicles as (
    select house_code, count(*) as vehicles from {{ ref('vehicle') }} group by house_code
)

select
    h.*,
    u.water_m3,
    u.electricity_kwh,
    u.gas_m3,
    coalesce(v.vehicles, 0) as vehicles,
    coalesce((select list(t.tag order by t.tag) from tags t where t.house_code = h.house_code), []) as tags
from houses h
left join use u using (house_code)
left join vehicles v using (house_code)
