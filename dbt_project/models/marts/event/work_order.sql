-- 网格事件/报事报修: one row per order, its latest state, every lifecycle time and the hours between.
with exports as (
    -- the latest state: the latest step reached, then the further state of the lifecycle (a state
    -- may come without its own time), then the delivery landed last, then the later line
    select w.*, row_number() over (
        partition by w.order_no
        order by coalesce(w.evaluated_at, w.closed_at, w.handled_at, w.dispatched_at, w.accepted_at, w.reported_at) desc,
                 case w.status when 'evaluated' then 6 when 'closed' then 5 when 'handled' then 4
                               when 'dispatched' then 3 when 'accepted' then 2 else 1 end desc,
                 d.landed_at desc, w._line desc) as latest
    from {{ ref('stg_grid_system__work_order') }} w
    join {{ ref('stg_lake__current_deliveries') }} d on d.delivery_id = w._delivery_id
),

orders as (
    select * from exports where latest = 1
)

select
    order_no,
    category,
    channel,
    community_code,
    grid_code,
    reporter_phone_key,
    description,
    status,
    reported_at,
    accepted_at,
    dispatched_at,
    handled_at,
    closed_at,
    evaluated_at,
    event_date as reported_date,
    satisfaction,
    handler as handler_staff_id,
    closed_at is not null as is_closed,
    -- hours as doubles on every engine: 3600e0, not 3600.0, which Spark keeps as a decimal cut at 6 places
    {{ boundaries_between('second', 'reported_at', 'accepted_at') }} / 3600e0 as hours_to_accept,
    {{ boundaries_between('second', 'accepted_at', 'dispatched_at') }} / 3600e0 as hours_to_dispatch,
    {{ boundaries_between('second', 'dispatched_at', 'handled_at') }} / 3600e0 as hours_to_handle,
    {{ boundaries_between('second', 'handled_at', 'closed_at') }} / 3600e0 as hours_to_close,
    {{ boundaries_between('second', 'closed_at', 'evaluated_at') }} / 3600e0 as hours_to_evaluate,
    {{ boundaries_between('second', 'reported_at', 'closed_at') }} / 3600e0 as handling_hours
from orders
