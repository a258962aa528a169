{{ config(materialized='incremental', **replace_by_day()) }}
-- 布控告警: AI-camera alarms as located points.
with source as (
    select * from {{ ref('stg_iot__camera_alarm') }}
),

alarms as (
    select * from source
    {{ new_event_days() }}
),

devices as (
    select device_id, estate_code, community_code, lon, lat from {{ ref('int_device_locations') }}
),

kinds as (
    select * from {{ ref('code_alarm_kind') }}
)

select
    a._delivery_id,
    a.alarm_id,
    a.camera_id,
    a.alarm_time,
    a.event_date,
    a.alarm_type,
    k.name_zh as alarm_name_zh,
    a.confidence,
    d.estate_code,
    d.community_code,
    d.lon,
    d.lat,
    d.device_id is null as is_unknown_device
from alarms a
left join devices d on d.device_id = a.camera_id
left join kinds k on k.code = a.alarm_type
