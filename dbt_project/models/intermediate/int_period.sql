-- The period the lake covers: from the first to the day after the last event date of the device feeds.
-- "Now" for every as-of rule (inactivity, offline devices) is the end of this period, so results
-- depend on the data alone, never on when the build runs.
with days as (
    select event_date from {{ ref('stg_iot__door_access') }}
    union all select event_date from {{ ref('stg_iot__meter') }}
    union all select event_date from {{ ref('stg_iot__barrier_gate') }}
)

select
    min(event_date) as first_date,
    max(event_date) as last_date,
    {{ local_instant('max(event_date) + interval 1 day') }} as period_end
from days
