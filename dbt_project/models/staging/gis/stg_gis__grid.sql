with source as (
    select * from {{ current_rows('grid') }}
)

select
    grid_code,
    grid_name,
    community_code,
    centroid_lon,
    centroid_lat,
    _delivery_id,
    _line
from source
