-- The people a current registry delivery lists in a row quarantine refused (a mistyped phone
-- number, a date it cannot read): the registry still lists them.
select distinct
    q.id_no_key,
    d.file,
    q._delivery_id
from {{ refused_rows('registry', ['_delivery_id', 'id_no_key']) }} q
join {{ ref('stg_lake__current_deliveries') }} d on d.delivery_id = q._delivery_id
where q.id_no_key is not null
