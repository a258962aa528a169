-- Deliveries whose rows count: landed, and not superseded by a later delivery of the same file.
with ledger as (
    select * from {{ source('raw', 'ledger') }}
)

select delivery_id, source, file, checksum, rows_read, rows_landed, rows_quarantined, finished_at as landed_at
from ledger
where status = 'landed'
  and delivery_id not in (select supersedes from ledger where supersedes is not null)
