-- 实有人口: one row per person (pseudonymous key), never a clear identifier.
with registry as (
    select * from {{ ref('stg_community_office__registry') }}
),

houses as (
    select house_code, community_code from {{ ref('house') }}
),

ethnicity as (
    select * from {{ ref('code_ethnicity') }}
),

relation as (
    select * from {{ ref('code_relation') }}
),

period as (
    select * from {{ ref('int_period') }}
)

select
    r.id_no_key as person_key,
    r.id_no_masked,
    r.name_masked,
    r.phone_masked,
    r.id_type,
    r.sex,
    year(r.birth_date) as birth_year,
    {{ boundaries_between('year', 'r.birth_date', '(select last_date from period)') }} as age,
    e.code as ethnicity_code,
    r.ethnicity as ethnicity_name,
    r.population_type,
    r.nationality,
    r.household_no,
    rel.code as relation_code,
    r.relation as relation_name,
    r.house_code,
    r.grid_code,
    h.community_code,
    r.registered_here = 'yes' as registered_here,
    r.moved_in,
    nullif(r.special_groups, '') as special_groups,
    coalesce(contains(r.special_groups, '独居老人'), false) as is_elderly_alone,
    coalesce(contains(r.special_groups, '残疾人'), false) as is_disabled,
    coalesce(contains(r.special_groups, '低保对象'), false) as is_low_income
from registry r
left join houses h using (house_code)
left join ethnicity e on e.name_zh = r.ethnicity
left join relation rel on rel.name_zh = r.relation
