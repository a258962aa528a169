-- The last time each device was heard from, over every feed.
with heard as (
    select device_id, event_time as heard_at from {{ ref('stg_iot__door_access') }}
    union all select device_id, pass_time from {{ ref('stg_iot__barrier_gate') }}
    union all select device_id, txn_time from {{ ref('stg_iot__locker') }}
    union all select point_id, checkin_time from {{ ref('stg_iot__patrol') }}
    union all select camera_id, alarm_time from {{ ref('stg_iot__camera_alarm') }}
    union all select meter_id, read_time from {{ ref('stg_iot__meter') }}
)

select device_id, max(heard_at) as last_seen, count(*) as events
from heard
group by device_id
