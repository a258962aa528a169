with source as (
    select * from {{ current_rows('vehicle') }}
)

select
    plate_key,
    plate_masked,
    owner_id_no_key,
    owner_id_no_masked,
    house_code,
    community_code,
    vehicle_type,
    plate_color,
    color,
    _delivery_id,
    _line
from source
