-- The period the lake covers: from the first to the day after the last event date of the device feeds.
-- "Now" for every as-of rule (inactivity, offline devices) is the end of this period, so results
-- depend on the data alone, never on when the build runs.
-- Read from the event marts, which hold every staged event: their tables answer min/max at once,
-- where the staging views would scan every delivery in the lake for each model that asks.
with days as (
    select event_date from {{ ref('door_access') }}
    union all select event_date from {{ ref('meter_reading') }}
    union all select event_date from {{ ref('vehicle_passage') }}
)

select
    min(event_date) as first_date,
    max(event_date) as last_date,
    {{ local_instant('max(event_date) + interval 1 day') }} as period_end
from days
