{% macro current_rows(table) -%}
{#- Rows of committed deliveries that no later delivery of the same file superseded. -#}
(select * from {{ source('raw', table) }}
 where _delivery_id in (select delivery_id from {{ ref('stg_lake__current_deliveries') }}))
{%- endmacro %}

{% macro delivered_rows(table) -%}
{#- Rows of every committed delivery, superseded ones too, with the file each came in and when it landed: the history. -#}
(select r.*, d.file as _file, d.landed_at from {{ source('raw', table) }} r
 join {{ ref('stg_lake__deliveries') }} d on d.delivery_id = r._delivery_id)
{%- endmacro %}
