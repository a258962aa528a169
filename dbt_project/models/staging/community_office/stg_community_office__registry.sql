with source as (
    select * from {{ current_rows('registry') }}
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
