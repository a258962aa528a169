-- 设备离线: devices that report continuously but were silent for the last 24 hours of the period.
select device_id, kind, vendor, community_code, grid_code, estate_code, lon, lat, last_seen
from {{ ref('device') }}
where status = 'offline'
