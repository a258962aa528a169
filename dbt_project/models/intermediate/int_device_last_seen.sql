-- The last time each device was heard from, over every event mart (built incrementally, so this
-- reads no raw file again).
with heard as (
    select device_id, event_time as heard_at from {{ ref('door_access') }}
    union all select device_id, pass_time from {{ ref('vehicle_passage') }}
    union all select device_id, txn_time from {{ ref('locker_sale') }}
    union all select point_id, checkin_time from {{ ref('patrol_checkin') }}
    union all select camera_id, alarm_time from {{ ref('camera_alarm') }}
    union all select meter_id, read_time from {{ ref('meter_reading') }}
)

select device_id, max(heard_at) as last_seen, count(*) as events
from heard
group by device_id
