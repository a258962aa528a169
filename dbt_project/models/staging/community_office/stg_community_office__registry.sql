-- One row per person. Someone listed by two community registries at once (moved, and the old
-- office has not re-delivered yet) counts where they moved in last; the raw zone's quality suite
-- reports the double listing. Someone whose row the current version of a registry refused (a
-- mistyped phone number, say) is still listed by it: their row as an earlier version of that file
-- landed it stands until the row is fixed.
with current_listing as (
    select r.*, d.file as _file, d.landed_at, 1 as recency
    from {{ current_rows('registry') }} r
    join {{ ref('stg_lake__current_deliveries') }} d on d.delivery_id = r._delivery_id
),

earlier_listing as (
    select h.*, row_number() over (partition by h.id_no_key order by h.landed_at desc, h._line) as recency
    from {{ delivered_rows('registry') }} h
    join {{ ref('stg_community_office__registry_refused') }} q
      on q.id_no_key = h.id_no_key and q.file = h._file and q._delivery_id <> h._delivery_id
),

listed as (
    select *, row_number() over (
        partition by id_no_key order by moved_in desc nulls last, landed_at desc, _delivery_id, _line) as listing
    from (select * from current_listing union all select * from earlier_listing where recency = 1) as rows
),

source as (
    select * from listed where listing = 1
)

select
    row_no,
    name_key,
    name_masked,
    sex,
    id_type,
    id_no_key,
    id_no_masked,
    birth_date,
    ethnicity,
    population_type,
    household_no,
    relation,
    grid_code,
    house_code,
    address,
    phone_key,
    phone_masked,
    special_groups,
    registered_here,
    moved_in,
    nationality,
    _delivery_id,
    _line
from source
