with source as (
    select * from {{ current_rows('organization') }}
)

select
    credit_code,
    org_name,
    org_kind,
    community_code,
    legal_rep_name_key,
    legal_rep_name_masked,
    legal_rep_phone_key,
    legal_rep_phone_masked,
    founded,
    _delivery_id,
    _line
from source
