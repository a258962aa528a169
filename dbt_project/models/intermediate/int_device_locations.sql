-- Each device with the place it serves: unit doors and meters by their unit/house, estate devices by estate.
with devices as (
    select * from {{ ref('stg_iot__device_registry') }}
),

buildings as (
    select building_code, grid_code from {{ ref('building') }}
)

select
    d.device_id,
    d.kind,
    d.vendor,
    d.model,
    d.estate_code,
    d.community_code,
    d.building_code,
    d.unit_code,
    d.house_code,
    b.grid_code,
    d.lon,
    d.lat,
    d.installed_at,
    d.status as registry_status,
    d.interval_minutes,
    d.base_reading,
    d.patrol_rounds
from devices d
left join buildings b using (building_code)
