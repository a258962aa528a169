with source as (
    select * from {{ current_rows('door_access') }}
)

select
    event_id,
    device_id,
    event_time,
    person_id_no_key,
    person_id_no_masked,
    open_method,
    direction,
    result,
    _delivery_id,
    _line,
    event_date
from source
