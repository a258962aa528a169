-- 车辆: registered vehicles by pseudonymous plate, with their owner and house.
with vehicles as (
    select * from {{ ref('stg_property__vehicle') }}
)

select
    plate_key,
    plate_masked,
    owner_id_no_key as owner_key,
    house_code,
    community_code,
    vehicle_type,
    plate_color,
    color
from vehicles
