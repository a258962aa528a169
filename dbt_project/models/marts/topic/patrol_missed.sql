-- 漏巡: patrol rounds with no check-in at their point on a day of the period.
with points as (
    select device_id, community_code, estate_code, patrol_rounds
    from {{ ref('int_device_locations') }}
    where kind = 'patrol_point'
),

days as (
    select unnest(generate_series(first_date, last_date, interval 1 day))::date as date from {{ ref('int_period') }}
),

expected as (
    select p.device_id, p.community_code, p.estate_code, d.date, r.round_no, r.round_time
    from points p
    cross join days d
    cross join lateral (
        select generate_subscripts(string_split(p.patrol_rounds, ';'), 1) as round_no,
               unnest(string_split(p.patrol_rounds, ';')) as round_time
    ) r
),

done as (
    select distinct point_id as device_id, event_date as date, round_no from {{ ref('patrol_checkin') }}
)

select e.device_id, e.date, e.round_no, e.round_time, e.community_code, e.estate_code
from expected e
anti join done using (device_id, date, round_no)
