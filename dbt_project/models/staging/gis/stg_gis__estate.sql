with source as (
    select * from {{ current_rows('estate') }}
)

select
    estate_code,
    estate_name,
    community_code,
    built_year,
    property_company_code,
    _delivery_id,
    _line
from source
