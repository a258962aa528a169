with source as (
    select * from {{ current_rows('device_registry') }}
)

select
    device_id,
    kind,
    vendor,
    model,
    estate_code,
    community_code,
    building_code,
    unit_code,
    house_code,
    lon,
    lat,
    installed_at,
    status,
    interval_minutes,
    base_reading,
    patrol_rounds,
    _delivery_id,
    _line
from source
