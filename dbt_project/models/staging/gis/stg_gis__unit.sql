with source as (
    select * from {{ current_rows('unit') }}
)

select
    unit_code,
    unit_no,
    building_code,
    floors,
    _delivery_id,
    _line
from source
