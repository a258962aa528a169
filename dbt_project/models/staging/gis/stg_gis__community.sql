with source as (
    select * from {{ current_rows('community') }}
)

select
    community_code,
    community_name,
    street_code,
    street_name,
    banner_code,
    banner_name,
    kind,
    centre_lon,
    centre_lat,
    side_m,
    _delivery_id,
    _line
from source
