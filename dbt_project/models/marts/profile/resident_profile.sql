-- 人员画像: one wide row per resident — who, where, and what the feeds say about them.
with residents as (
    select * from {{ ref('resident') }}
),

doors as (
    select person_key, cast(sum(door_events) as bigint) as door_events, max(last_door_event) as last_door_event,
           count(*) as active_days
    from {{ ref('int_person_doors_daily') }}
    group by person_key
),

vehicles as (
    select owner_key as person_key, count(*) as vehicles from {{ ref('vehicle') }} group by owner_key
),

inactive as (
    select person_key, true as is_inactive_alert from {{ ref('elderly_alone_inactive') }}
)

select
    r.*,
    coalesce(d.door_events, 0) as door_events,
    d.last_door_event,
    coalesce(d.active_days, 0) as active_days,
    coalesce(v.vehicles, 0) as vehicles,
    coalesce(i.is_inactive_alert, false) as is_inactive_alert
from residents r
left join doors d using (person_key)
left join vehicles v using (person_key)
left join inactive i using (person_key)
