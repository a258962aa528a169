with source as (
    select * from {{ current_rows('grid_staff') }}
)

select
    staff_id,
    name_key,
    name_masked,
    id_no_key,
    id_no_masked,
    phone_key,
    phone_masked,
    role,
    grid_code,
    community_code,
    _delivery_id,
    _line
from source
