{% macro new_event_days(column='event_date') -%}
{#- In an incremental run, only the days from the latest one already built onwards are rebuilt. -#}
{%- if is_incremental() -%}
where {{ column }} >= (select coalesce(max(event_date), date '1900-01-01') from {{ this }})
{%- endif -%}
{%- endmacro %}
