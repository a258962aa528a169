-- One row per person. Someone listed by two community registries at once (moved, and the old
-- office has not re-delivered yet) counts where they moved in last; the raw zone's quality suite
-- reports the double listing.
with listed as (
    select r.*, row_number() over (
        partition by r.id_no_key order by r.moved_in desc nulls last, d.landed_at desc, r._delivery_id, r._line) as listing
    from {{ current_rows('registry') }} r
    join {{ ref('stg_lake__current_deliveries') }} d on d.delivery_id = r._delivery_id
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
