with source as (
    select * from {{ current_rows('work_order') }}
)

select
    order_no,
    category,
    channel,
    community_code,
    grid_code,
    reporter_phone_key,
    reporter_phone_masked,
    description,
    reported_at,
    accepted_at,
    dispatched_at,
    handled_at,
    closed_at,
    evaluated_at,
    satisfaction,
    handler,
    status,
    _delivery_id,
    _line,
    event_date
from source
