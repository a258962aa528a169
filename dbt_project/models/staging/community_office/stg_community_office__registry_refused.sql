-- The people a current registry delivery lists in a row quarantine refused (a mistyped phone
-- number, a date it cannot read), and in no row it landed: the registry still lists them. A
-- second row of someone it landed (a duplicate) changes nothing.
select distinct
    q.id_no_key,
    d.file,
    q._delivery_id
from {{ refused_rows('registry', ['_delivery_id', 'id_no_key']) }} q
join {{ ref('stg_lake__current_deliveries') }} d on d.delivery_id = q._delivery_id
where q.id_no_key is not null
  and not exists (
      select 1 from {{ current_rows('registry') }} r
      where r._delivery_id = q._delivery_id and r.id_no_key = q.id_no_key
  )
