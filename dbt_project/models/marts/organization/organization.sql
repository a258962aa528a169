-- 组织: property companies, merchants, social and party organisations, with the estates they manage.
with orgs as (
    select * from {{ ref('stg_grid_system__organization') }}
),

managed as (
    select property_company_code as credit_code, count(*) as estates_managed, {{ sorted_list('estate_code') }} as estate_codes
    from {{ ref('stg_gis__estate') }}
    group by property_company_code
)

select
    o.credit_code,
    o.org_name,
    o.org_kind,
    o.community_code,
    o.legal_rep_name_masked,
    o.legal_rep_phone_masked,
    o.founded,
    coalesce(m.estates_managed, 0) as estates_managed,
    m.estate_codes
from orgs o
left join managed m using (credit_code)
