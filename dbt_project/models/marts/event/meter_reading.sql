{{ config(materialized='incremental', **replace_by_day()) }}
-- 抄表: cumulative readings with the consumption since the previous reading. The first reading of a
-- meter is measured from its 表底数; a reading below the one before gives a negative consumption
-- (flagged, for the quality checks) rather than a guess.
with source as (
    select * from {{ ref('stg_iot__meter') }}
),

readings as (
    select * from source
    -- a late or corrected day changes the consumption of the first reading after it
    {{ new_event_days(onward=true) }}
),

meters as (
    select device_id as meter_id, kind, house_code, grid_code, community_code, interval_minutes, base_reading
    from {{ ref('int_device_locations') }}
),

{% if is_incremental() %}
earlier as (
    -- the last reading already built before the days rebuilt now
    select meter_id, max_by(reading, read_time) as reading
    from {{ this }}
    where event_date < (select min(event_date) from readings)
    group by meter_id
),
{% else %}
earlier as (select cast(null as string) as meter_id, cast(null as double) as reading where false),
{% endif %}

ordered as (
    select
        r.*,
        lag(r.reading) over (partition by r.meter_id order by r.read_time) as previous_reading
    from readings r
)

select
    o._delivery_id,
    o.meter_id,
    m.kind,
    o.read_time,
    o.event_date,
    o.reading,
    o.unit,
    o.reading - coalesce(o.previous_reading, e.reading, m.base_reading) as consumption,
    o.reading < coalesce(o.previous_reading, e.reading, m.base_reading) as is_backwards,
    m.interval_minutes,
    m.house_code,
    m.grid_code,
    m.community_code,
    m.meter_id is null as is_unknown_device
from ordered o
left join meters m using (meter_id)
left join earlier e using (meter_id)
