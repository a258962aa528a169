-- 设备位置历史: where each device has been, from every registry delivery (superseded ones too).
with versions as (
    select device_id, estate_code, community_code, building_code, unit_code, house_code, lon, lat,
           min(installed_at) as installed_at, min(landed_at) as first_seen
    from {{ delivered_rows('device_registry') }}
    group by all
),

ordered as (
    select *, row_number() over (partition by device_id order by first_seen) as version
    from versions
)

select
    device_id,
    version,
    estate_code,
    community_code,
    building_code,
    unit_code,
    house_code,
    lon,
    lat,
    -- the first location holds from installation; later ones from the delivery that reported them
    case when version = 1 then {{ local_instant('installed_at') }} else first_seen end as valid_from,
    lead(first_seen) over (partition by device_id order by first_seen) as valid_to
from ordered
