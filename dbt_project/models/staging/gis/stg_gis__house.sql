with source as (
    select * from {{ current_rows('house') }}
)

select
    house_code,
    unit_code,
    building_code,
    estate_code,
    grid_code,
    community_code,
    floor,
    room_no,
    area_m2,
    use,
    ownership,
    address,
    rented,
    _delivery_id,
    _line
from source
