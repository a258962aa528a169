-- 设备: every registered device with where it is, when it was last heard from and whether it is online.
-- Only devices that report continuously (doors, gates, meters) can be judged offline by silence.
with devices as (
    select * from {{ ref('int_device_locations') }}
),

last_seen as (
    select * from {{ ref('int_device_last_seen') }}
),

kinds as (
    select * from {{ ref('code_device_kind') }}
),

period as (
    select * from {{ ref('int_period') }}
)

select
    d.*,
    k.name_zh as kind_name_zh,
    s.last_seen,
    coalesce(s.events, 0) as events,
    k.reports_continuously,
    case
        when not k.reports_continuously then 'not_monitored'
        when s.last_seen >= (select period_end from period) - interval {{ var('offline_hours', 24) }} hour then 'online'
        else 'offline'
    end as status
from devices d
left join last_seen s using (device_id)
left join kinds k on k.code = d.kind
