-- 群租/过度居住: houses with 6 or more registered residents and less than 12 m² each.
select
    house_code,
    grid_code,
    community_code,
    registered_residents as persons,
    area_m2,
    round(area_m2 / registered_residents, 1) as m2_per_person
from {{ ref('house') }}
where registered_residents >= {{ var('overcrowded_min_persons', 6) }}
  and area_m2 / registered_residents < {{ var('overcrowded_max_m2_per_person', 12) }}
