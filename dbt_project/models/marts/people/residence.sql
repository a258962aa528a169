-- Who lives where, from when to when: a later registration in another house closes the earlier one.
with registrations as (
    select id_no_key as person_key, house_code, moved_in
    from {{ ref('stg_community_office__registry') }}
)

select
    person_key,
    house_code,
    moved_in as valid_from,
    lead(moved_in) over (partition by person_key order by moved_in) as valid_to
from registrations
