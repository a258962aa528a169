{% macro daily_metrics(area) -%}
{#- The daily metrics of one kind of area (grid_code or community_code): one definition for both grains. -#}
{%- set alarm_kinds = ['fall', 'fight', 'smoke_fire', 'corridor_clutter', 'ebike_in_lift', 'object_thrown', 'crowding'] -%}
with days as (
    select unnest(generate_series(first_date, last_date, interval 1 day))::date as date from {{ ref('int_period') }}
),

areas as (
    select distinct {{ area }} from {{ ref('grid') }}
),

reported as (
    select {{ area }}, reported_date as date, count(*) as orders_reported,
           count(*) filter (where is_closed) as orders_closed,
           avg(handling_hours) as mean_handling_hours,
           quantile_cont(handling_hours, 0.9) as p90_handling_hours
    from {{ ref('work_order') }}
    group by all
),

alarms as (
    select d.{{ area }}, a.event_date as date, count(*) as alarms
    {%- for k in alarm_kinds %}, count(*) filter (where a.alarm_type = '{{ k }}') as alarms_{{ k }}{% endfor %}
    from {{ ref('camera_alarm') }} a
    join {{ ref('device') }} d on d.device_id = a.camera_id
    group by all
),

monitored as (
    select {{ area }}, count(*) as devices_monitored
    from {{ ref('device') }}
    where reports_continuously
    group by all
),

heard as (
    -- continuous reporters heard from on the day
    select d.{{ area }}, h.date, count(distinct h.device_id) as devices_heard
    from (
        select device_id, event_date as date from {{ ref('int_device_events_daily') }}
        where feed in ('door_access', 'vehicle_passage', 'meter_reading')
    ) h
    join {{ ref('device') }} d using (device_id)
    where d.reports_continuously
    group by all
),

patrol_expected as (
    select d.{{ area }}, count(*) * len(string_split(any_value(d.patrol_rounds), ';')) as rounds_per_day
    from {{ ref('device') }} d where d.kind = 'patrol_point'
    group by all
),

patrol_missed as (
    select d.{{ area }}, m.date, count(*) as rounds_missed
    from {{ ref('patrol_missed') }} m join {{ ref('device') }} d using (device_id)
    group by all
),

doors as (
    select {{ area }}, event_date as date, cast(sum(events) as bigint) as door_events
    from {{ ref('int_device_events_daily') }}
    where feed = 'door_access'
    group by all
),

occupancy as (
    select {{ area }}, count(*) as houses, count(*) filter (where is_registered_occupied) as occupied_houses
    from {{ ref('house') }}
    group by all
)

select
    a.{{ area }},
    d.date,
    coalesce(r.orders_reported, 0) as orders_reported,
    coalesce(r.orders_closed, 0) as orders_closed,
    r.orders_closed / nullif(r.orders_reported, 0) as handling_rate,
    r.mean_handling_hours,
    r.p90_handling_hours,
    coalesce(al.alarms, 0) as alarms
    {%- for k in alarm_kinds %}, coalesce(al.alarms_{{ k }}, 0) as alarms_{{ k }}{% endfor %},
    coalesce(h.devices_heard, 0) / nullif(m.devices_monitored, 0) as device_online_rate,
    1 - coalesce(pm.rounds_missed, 0) / nullif(pe.rounds_per_day, 0) as patrol_completion,
    coalesce(dr.door_events, 0) as door_events,
    o.occupied_houses / nullif(o.houses, 0) as occupancy
from areas a
cross join days d
left join reported r on r.{{ area }} = a.{{ area }} and r.date = d.date
left join alarms al on al.{{ area }} = a.{{ area }} and al.date = d.date
left join monitored m on m.{{ area }} = a.{{ area }}
left join heard h on h.{{ area }} = a.{{ area }} and h.date = d.date
left join patrol_expected pe on pe.{{ area }} = a.{{ area }}
left join patrol_missed pm on pm.{{ area }} = a.{{ area }} and pm.date = d.date
left join doors dr on dr.{{ area }} = a.{{ area }} and dr.date = d.date
left join occupancy o on o.{{ area }} = a.{{ area }}
{%- endmacro %}
