-- The last time each device was heard from, over every feed, and how many events it sent.
select device_id, max(last_heard) as last_seen, cast(sum(events) as bigint) as events
from {{ ref('int_device_events_daily') }}
group by device_id
