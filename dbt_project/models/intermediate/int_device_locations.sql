-- Each device with the place it serves: unit doors and meters by their unit/house, estate devices by
-- estate. An estate-wide device (camera, gate, locker, patrol point) counts in the grid that holds
-- most of its estate's buildings, so grid metrics see its events as community metrics do.
with devices as (
    select * from {{ ref('stg_iot__device_registry') }}
),

buildings as (
    select building_code, estate_code, grid_code from {{ ref('building') }}
),

estate_grids as (
    select estate_code, grid_code from (
        select estate_code, grid_code,
               row_number() over (partition by estate_code order by count(*) desc, grid_code) as grid_rank
        from buildings
        group by estate_code, grid_code
    ) ranked
    where grid_rank = 1
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
    coalesce(b.grid_code, e.grid_code) as grid_code,
    d.lon,
    d.lat,
    d.installed_at,
    d.status as registry_status,
    d.interval_minutes,
    d.base_reading,
    d.patrol_rounds
from devices d
left join buildings b on b.building_code = d.building_code
left join estate_grids e on e.estate_code = d.estate_code
