-- Who lives where, from when to when, over every registry delivery (superseded ones too):
-- a registration in another house closes the earlier one, and so does a registry that stops
-- listing the person (moved away, left the city), on the day that registry landed. A row the
-- current version refused still lists the person.
with rows as (
    select
        r.id_no_key as person_key,
        r.house_code,
        r.moved_in,
        r._file as file,
        r.landed_at,
        c.delivery_id is not null or q.id_no_key is not null as listed_now
    from {{ delivered_rows('registry') }} r
    left join {{ ref('stg_lake__current_deliveries') }} c on c.delivery_id = r._delivery_id
    left join {{ ref('stg_community_office__registry_refused') }} q on q.id_no_key = r.id_no_key and q.file = r._file
),

registrations as (
    select
        person_key,
        house_code,
        min(moved_in) as moved_in,
        bool_or(listed_now) as listed_now,
        -- the registry that listed them last: its current version is the one that dropped them
        max_by(file, landed_at) as last_file
    from rows
    group by person_key, house_code
),

dropped as (
    select r.person_key, r.house_code, cast(c.landed_at as date) as dropped_on
    from registrations r
    join {{ ref('stg_lake__current_deliveries') }} c on c.file = r.last_file
    where not r.listed_now
)

select
    r.person_key,
    r.house_code,
    r.moved_in as valid_from,
    coalesce(lead(r.moved_in) over (partition by r.person_key order by r.moved_in), d.dropped_on) as valid_to
from registrations r
left join dropped d on d.person_key = r.person_key and d.house_code = r.house_code
