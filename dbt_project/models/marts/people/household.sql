-- 户: one row per household, its house, size and householder.
with residents as (
    select * from {{ ref('resident') }}
)

select
    household_no,
    any_value(house_code) as house_code,
    any_value(grid_code) as grid_code,
    any_value(community_code) as community_code,
    count(*) as members,
    max(person_key) filter (where relation_code = '02') as householder_key,
    count(*) filter (where relation_code = '02') as householders,
    any_value(population_type) as population_type
from residents
group by household_no
