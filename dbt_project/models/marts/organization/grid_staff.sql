-- 网格员: grid staff, their grid and their work-order load.
with staff as (
    select * from {{ ref('stg_grid_system__grid_staff') }}
),

load as (
    select handler_staff_id as staff_id,
           count(*) as orders_assigned,
           count(*) filter (where not is_closed) as orders_open,
           avg(handling_hours) as mean_handling_hours
    from {{ ref('work_order') }}
    group by handler_staff_id
)

select
    s.staff_id,
    s.name_masked,
    s.phone_masked,
    s.role,
    s.grid_code,
    s.community_code,
    coalesce(l.orders_assigned, 0) as orders_assigned,
    coalesce(l.orders_open, 0) as orders_open,
    l.mean_handling_hours
from staff s
left join load l using (staff_id)
