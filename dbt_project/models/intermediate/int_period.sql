-- The period the lake covers: from the first to the day after the last event date of the device feeds.
-- "Now" for every as-of rule (inactivity, offline devices) is the end of this period, so results
-- depend on the data alone, never on when the build runs.
-- Read from the event marts, which hold every staged event: their tables answer min/max at once,
-- where the staging views would scan every delivery in the lake for each model that asks.
with days as (
    select event_date from {{ ref('door_access') }}
    union all select event_date from {{ ref('meter_reading') }}
    union all select event_date from {{ ref('vehicle_passage') }}
),

-- Before any device feed has delivered (registries landed first), the period is the day the
-- latest delivery landed.
landed as (
    select cast(max(landed_at) as date) as landed_on from {{ ref('stg_lake__current_deliveries') }}
),

bounds as (
    select min(event_date) as first_event, max(event_date) as last_event from days
)

select
    coalesce(b.first_event, l.landed_on) as first_date,
    coalesce(b.last_event, l.landed_on) as last_date,
    {{ local_instant('coalesce(b.last_event, l.landed_on) + interval 1 day') }} as period_end
from bounds b
cross join landed l
