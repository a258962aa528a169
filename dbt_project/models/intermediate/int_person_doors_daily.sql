{{ config(materialized='incremental', **replace_by_day()) }}
-- Per resident and day: door events, the last one, and the last that opened the door. Profiles and
-- the inactivity topic read these rows instead of every door event again; a new day adds its own.
with doors as (
    select * from {{ ref('door_access') }}
    {{ new_event_days() }}
)

select
    person_key,
    event_date,
    count(*) as door_events,
    max(event_time) as last_door_event,
    max(case when result = 'success' then event_time end) as last_door_opened
from doors
where person_key is not null
group by person_key, event_date
