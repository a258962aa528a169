{{ config(materialized='incremental', **replace_by_day()) }}
-- 车辆通行: barrier-gate passages by pseudonymous plate.
with source as (
    select * from {{ ref('stg_iot__barrier_gate') }}
),

passes as (
    select * from source
    {{ new_event_days() }}
),

devices as (
    select device_id, estate_code, community_code from {{ ref('int_device_locations') }}
),

vehicles as (
    select plate_key, house_code from {{ ref('stg_property__vehicle') }}
)

select
    p._delivery_id,
    p.pass_id,
    p.device_id,
    p.pass_time,
    p.event_date,
    p.plate_key,
    p.plate_masked,
    p.direction,
    p.vehicle_type,
    p.plate_color,
    v.house_code,
    v.plate_key is not null as is_registered_vehicle,
    d.estate_code,
    d.community_code,
    d.device_id is null as is_unknown_device
from passes p
left join devices d using (device_id)
left join vehicles v using (plate_key)
