-- Who lives where, from when to when, over every registry delivery (superseded ones too):
-- a registration in another house closes the earlier one.
with registrations as (
    select id_no_key as person_key, house_code, min(moved_in) as moved_in
    from {{ delivered_rows('registry') }}
    group by all
)

select
    person_key,
    house_code,
    moved_in as valid_from,
    lead(moved_in) over (partition by person_key order by moved_in) as valid_to
from registrations
