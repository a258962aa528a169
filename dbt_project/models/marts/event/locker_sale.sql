{{ config(materialized='incremental', **replace_by_day()) }}
-- 智能柜: locker and vending transactions.
with source as (
    select * from {{ ref('stg_iot__locker') }}
),

txns as (
    select * from source
    {{ new_event_days() }}
),

devices as (
    select device_id, estate_code, community_code from {{ ref('int_device_locations') }}
)

select
    t._delivery_id,
    t.txn_id,
    t.device_id,
    t.txn_time,
    t.event_date,
    t.txn_type,
    t.amount,
    t.payer_phone_key,
    d.estate_code,
    d.community_code,
    d.device_id is null as is_unknown_device
from txns t
left join devices d using (device_id)
