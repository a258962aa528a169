with source as (
    select * from {{ current_rows('patrol') }}
)

select
    checkin_id,
    point_id,
    guard_id,
    checkin_time,
    round_no,
    _delivery_id,
    _line,
    event_date
from source
