with source as (
    select * from {{ current_rows('building_geometry') }}
)

select
    building_code,
    geometry,
    _delivery_id,
    _line
from source
