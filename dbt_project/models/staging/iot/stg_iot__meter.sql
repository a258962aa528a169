with source as (
    select * from {{ current_rows('meter') }}
)

select
    meter_id,
    read_time,
    reading,
    unit,
    _delivery_id,
    _line,
    event_date
from source
