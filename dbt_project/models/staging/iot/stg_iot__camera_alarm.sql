with source as (
    select * from {{ current_rows('camera_alarm') }}
)

select
    alarm_id,
    camera_id,
    alarm_time,
    alarm_type,
    confidence,
    _delivery_id,
    _line,
    event_date
from source
