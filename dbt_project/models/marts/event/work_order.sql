-- 网格事件/报事报修: one row per order, its latest state, every lifecycle time and the hours between.
with exports as (
    select *, row_number() over (partition by order_no order by coalesce(evaluated_at, closed_at, handled_at, dispatched_at, accepted_at, reported_at) desc, _delivery_id desc) as latest
    from {{ ref('stg_grid_system__work_order') }}
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
