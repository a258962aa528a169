-- 独居老人无门禁活动: elderly residents living alone with no door event for 48 hours or more
-- at the end of the period (none at all counts too).
with residents as (
    select * from {{ ref('resident') }} where is_elderly_alone
),

last_door as (
    select person_key, max(last_door_opened) as last_door_event
    from {{ ref('int_person_doors_daily') }}
    group by person_key
),

period as (
    select * from {{ ref('int_period') }}
)

select
    r.person_key,
    r.name_masked,
    r.age,
    r.community_code,
    r.grid_code,
    r.house_code,
    l.last_door_event,
    {{ boundaries_between('hour', 'l.last_door_event', 'p.period_end') }} as silent_hours
from residents r
cross join period p
left join last_door l using (person_key)
where l.last_door_event is null
   or l.last_door_event < p.period_end - interval {{ var('inactive_hours', 48) }} hour
