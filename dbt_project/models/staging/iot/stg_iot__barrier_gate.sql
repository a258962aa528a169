with source as (
    select * from {{ current_rows('barrier_gate') }}
)

select
    pass_id,
    device_id,
    pass_time,
    plate_key,
    plate_masked,
    direction,
    vehicle_type,
    plate_color,
    _delivery_id,
    _line,
    event_date
from source
