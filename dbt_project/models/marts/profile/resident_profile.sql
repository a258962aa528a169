-- 人员画像: one wide row per resident — who, where, and what the feeds say about them.
with residents as (
    select * from {{ ref('resident') }}
),

doors as (
    select person_key, count(*) as door_events, max(event_time) as last_door_event, count(distinct event_date) as active_days
    from {{ ref('door_access') }}
    where person_key is not null
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
