with source as (
    select * from {{ current_rows('grid_geometry') }}
)

select
    grid_code,
    geometry,
    _delivery_id,
    _line
from source
