{{ config(materialized='incremental', **replace_by_day()) }}
-- 巡更: patrol check-ins at patrol points.
with source as (
    select * from {{ ref('stg_iot__patrol') }}
),

checkins as (
    select * from source
    {{ new_event_days() }}
),

devices as (
    select device_id, estate_code, community_code from {{ ref('int_device_locations') }}
)

select
    c._delivery_id,
    c.checkin_id,
    c.point_id,
    c.guard_id,
    c.checkin_time,
    c.event_date,
    c.round_no,
    d.estate_code,
    d.community_code,
    d.device_id is null as is_unknown_device
from checkins c
left join devices d on d.device_id = c.point_id
