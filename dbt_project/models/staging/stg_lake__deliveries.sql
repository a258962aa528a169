-- Every landed delivery, superseded ones included: what facts that vary over time are rebuilt from.
select delivery_id, source, file, checksum, rows_landed, finished_at as landed_at
from {{ source('raw', 'ledger') }}
where status = 'landed'
