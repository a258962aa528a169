{{ config(materialized='incremental', **replace_by_day()) }}
-- 门禁: door-access events with the resident's pseudonymous key and the door's place.
with source as (
    select * from {{ ref('stg_iot__door_access') }}
),

events as (
    select * from source
    {{ new_event_days() }}
),

devices as (
    select device_id, unit_code, building_code, estate_code, grid_code, community_code from {{ ref('int_device_locations') }}
)

select
    e._delivery_id,
    e.event_id,
    e.device_id,
    e.event_time,
    e.event_date,
    e.person_id_no_key as person_key,
    e.open_method,
    e.direction,
    e.result,
    d.unit_code,
    d.building_code,
    d.estate_code,
    d.grid_code,
    d.community_code,
    d.device_id is null as is_unknown_device
from events e
left join devices d using (device_id)
