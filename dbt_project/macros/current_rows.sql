{% macro current_rows(table) -%}
{#- Rows of committed deliveries that no later delivery of the same file superseded. -#}
(select * from {{ source('raw', table) }}
 where _delivery_id in (select delivery_id from {{ ref('stg_lake__current_deliveries') }}))
{%- endmacro %}
