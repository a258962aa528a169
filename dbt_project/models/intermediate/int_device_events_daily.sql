{{ config(materialized='incremental', **replace_by_day()) }}
-- Per device, feed and day: how many events it sent and when it was last heard from, with the area
-- its event mart gave it. Devices and the daily metrics read these few rows a day instead of every
-- event again, and a new day adds only its own rows.
with heard as (
    select device_id, event_date, event_time as heard_at, 'door_access' as feed, community_code, grid_code from {{ ref('door_access') }}
    union all select device_id, event_date, pass_time, 'vehicle_passage', community_code, cast(null as string) from {{ ref('vehicle_passage') }}
    union all select device_id, event_date, txn_time, 'locker_sale', community_code, cast(null as string) from {{ ref('locker_sale') }}
    union all select point_id, event_date, checkin_time, 'patrol_checkin', community_code, cast(null as string) from {{ ref('patrol_checkin') }}
    union all select camera_id, event_date, alarm_time, 'camera_alarm', community_code, cast(null as string) from {{ ref('camera_alarm') }}
    union all select meter_id, event_date, read_time, 'meter_reading', community_code, grid_code from {{ ref('meter_reading') }}
)

select device_id, event_date, feed, community_code, grid_code, count(*) as events, max(heard_at) as last_heard
from heard
{{ new_event_days() }}
group by device_id, event_date, feed, community_code, grid_code
