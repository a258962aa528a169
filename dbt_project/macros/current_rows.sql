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

{% macro refused_rows(table, columns) -%}
{#- `columns` (text) of the rows quarantine kept for a raw table, every delivery's, as `delivered_rows`.
    A lake may have no quarantined row of the table yet, or only files written before a column
    was kept: what is missing reads as no rows, or as NULL. -#}
{{ return(adapter.dispatch('refused_rows', 'linli')(table, columns)) }}
{%- endmacro %}

{% macro quarantine_dir(table) -%}
{{ return(env_var('LINLI_LAKE', '../data/lake') ~ '/quarantine/' ~ table) }}
{%- endmacro %}

{% macro default__refused_rows(table, columns) -%}
{%- set files = quarantine_dir(table) ~ '/*.parquet' -%}
{%- set present = [] -%}
{%- if execute and run_query("select count(*) from glob('" ~ files ~ "')").columns[0].values()[0] > 0 -%}
  {%- set present = run_query("describe select * from read_parquet('" ~ files ~ "', union_by_name = true)").columns[0].values() -%}
{%- endif -%}
{%- if present -%}
(select {% for c in columns %}{{ c if c in present else 'null::varchar as ' ~ c }}{{ ', ' if not loop.last }}{% endfor %}
 from read_parquet('{{ files }}', union_by_name = true))
{%- else -%}
(select {% for c in columns %}null::varchar as {{ c }}{{ ', ' if not loop.last }}{% endfor %} where false)
{%- endif %}
{%- endmacro %}

{% macro spark__refused_rows(table, columns) -%}
{#- A table over the directory with its columns declared: Spark then reads a missing directory as
    no rows and a missing column as NULL, where inferring the schema would fail. -#}
{%- set relation = 'raw.' ~ table ~ '_refused' -%}
{%- if execute -%}
  {%- do run_query('drop table if exists ' ~ relation) -%}
  {%- do run_query('create table ' ~ relation ~ ' (' ~ columns | join(' string, ') ~ " string) using parquet location '" ~ quarantine_dir(table) ~ "'") -%}
{%- endif -%}
{{ relation }}
{%- endmacro %}
