{% macro new_event_days(column='event_date') -%}
{#- In an incremental run, only the days that deliveries not yet built carry are rebuilt: a new
    day, or a day a corrected re-delivery replaced. Rows keep their _delivery_id for this. -#}
{%- if is_incremental() -%}
where {{ column }} in (
    select distinct {{ column }} from source
    where _delivery_id not in (select distinct _delivery_id from {{ this }}))
{%- endif -%}
{%- endmacro %}
