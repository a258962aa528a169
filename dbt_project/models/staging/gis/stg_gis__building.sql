with source as (
    select * from {{ current_rows('building') }}
)

select
    building_code,
    building_no,
    estate_code,
    grid_code,
    community_code,
    floors,
    units,
    lon,
    lat,
    _delivery_id,
    _line
from source
