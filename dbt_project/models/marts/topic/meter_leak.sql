-- 管道渗漏: hourly water meters that show use in every night hour (02:00–05:00) of every night:
-- a sound home sleeps; a leaking pipe does not.
with night as (
    select meter_id, house_code, community_code, consumption
    from {{ ref('meter_reading') }}
    where kind = 'water_meter' and interval_minutes = 60 and not is_backwards
      and {{ local_hour('read_time') }} between 2 and 4
)

select meter_id as device_id, any_value(house_code) as house_code, any_value(community_code) as community_code,
       min(consumption) as min_night_m3, count(*) as night_readings
from night
group by meter_id
having min(consumption) >= {{ var('leak_min_m3_per_hour', 0.01) }}
