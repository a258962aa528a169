with source as (
    select * from {{ current_rows('locker') }}
)

select
    txn_id,
    device_id,
    txn_time,
    txn_type,
    amount,
    payer_phone_key,
    payer_phone_masked,
    _delivery_id,
    _line,
    event_date
from source
