-- 社区画像: one wide row per community — people, houses, devices, events and the alerts it holds.
with communities as (
    select * from {{ ref('community') }}
),

people as (
    select community_code,
           count(*) as residents,
           count(*) filter (where population_type = 'registered') as registered_residents,
           count(*) filter (where population_type = 'floating') as floating_residents,
           count(*) filter (where population_type = 'foreign') as foreign_residents,
           count(*) filter (where age >= 60) as aged_60_plus,
           count(*) filter (where is_elderly_alone) as elderly_alone
    from {{ ref('resident') }}
    group by community_code
),

houses as (
    select community_code, count(*) as houses, count(*) filter (where rented) as rented_houses
    from {{ ref('house') }}
    group by community_code
),

devices as (
    select community_code, count(*) as devices,
           count(*) filter (where status = 'online') / nullif(count(*) filter (where reports_continuously), 0) as device_online_rate
    from {{ ref('device') }}
    group by community_code
),

orders as (
    select community_code, count(*) as work_orders, avg(is_closed::int) as handling_rate, avg(satisfaction) as mean_satisfaction
    from {{ ref('work_order') }}
    group by community_code
),

alerts as (
    select community_code,
           count(*) filter (where topic = 'elderly_alone_inactive') as elderly_inactive_alerts,
           count(*) filter (where topic = 'vacant_house') as vacant_houses,
           count(*) filter (where topic = 'overcrowded_house') as overcrowded_houses,
           count(*) filter (where topic = 'meter_leak') as meter_leaks,
           count(*) filter (where topic = 'device_offline') as devices_offline
    from (
        select community_code, 'elderly_alone_inactive' as topic from {{ ref('elderly_alone_inactive') }}
        union all select community_code, 'vacant_house' from {{ ref('vacant_house') }}
        union all select community_code, 'overcrowded_house' from {{ ref('overcrowded_house') }}
        union all select community_code, 'meter_leak' from {{ ref('meter_leak') }}
        union all select community_code, 'device_offline' from {{ ref('device_offline') }}
    )
    group by community_code
)

select
    c.*,
    coalesce(p.residents, 0) as residents,
    coalesce(p.registered_residents, 0) as registered_residents,
    coalesce(p.floating_residents, 0) as floating_residents,
    coalesce(p.foreign_residents, 0) as foreign_residents,
    coalesce(p.aged_60_plus, 0) as aged_60_plus,
    coalesce(p.elderly_alone, 0) as elderly_alone,
    coalesce(h.houses, 0) as houses,
    coalesce(h.rented_houses, 0) as rented_houses,
    coalesce(d.devices, 0) as devices,
    d.device_online_rate,
    coalesce(o.work_orders, 0) as work_orders,
    o.handling_rate,
    o.mean_satisfaction,
    coalesce(a.elderly_inactive_alerts, 0) as elderly_inactive_alerts,
    coalesce(a.vacant_houses, 0) as vacant_houses,
    coalesce(a.overcrowded_houses, 0) as overcrowded_houses,
    coalesce(a.meter_leaks, 0) as meter_leaks,
    coalesce(a.devices_offline, 0) as devices_offline
from communities c
left join people p using (community_code)
left join houses h using (community_code)
left join devices d using (community_code)
left join orders o using (community_code)
left join alerts a using (community_code)
