{#- The few places where DuckDB and Spark SQL differ, dispatched per adapter so that one set of
    models runs on both (docs/scaling.md). DuckDB is the default; Spark overrides. Times: both
    engines run with the session time zone Asia/Shanghai (profiles.yml). -#}

{% macro local_instant(local_timestamp) -%}
{#- The instant a Beijing wall-clock time (a date or a timestamp without zone) stands for. -#}
{{ return(adapter.dispatch('local_instant', 'linli')(local_timestamp)) }}
{%- endmacro %}

{% macro default__local_instant(local_timestamp) -%}
timezone('Asia/Shanghai', ({{ local_timestamp }})::timestamp)
{%- endmacro %}

{% macro spark__local_instant(local_timestamp) -%}
{#- Spark's timestamp is an instant read in the session zone: casting is the whole conversion. -#}
cast({{ local_timestamp }} as timestamp)
{%- endmacro %}


{% macro local_hour(instant) -%}
{#- The Beijing hour of the day (0-23) of an instant. -#}
{{ return(adapter.dispatch('local_hour', 'linli')(instant)) }}
{%- endmacro %}

{% macro default__local_hour(instant) -%}
hour(timezone('Asia/Shanghai', {{ instant }}))
{%- endmacro %}

{% macro spark__local_hour(instant) -%}
hour({{ instant }})
{%- endmacro %}


{% macro boundaries_between(part, start, end) -%}
{#- How many `part` boundaries (second, hour, year, …) lie between two times: DuckDB's date_diff,
    not a count of whole elapsed units (an age in years is year(end) - year(start)). -#}
{{ return(adapter.dispatch('boundaries_between', 'linli')(part, start, end)) }}
{%- endmacro %}

{% macro default__boundaries_between(part, start, end) -%}
date_diff('{{ part }}', {{ start }}, {{ end }})
{%- endmacro %}

{% macro spark__boundaries_between(part, start, end) -%}
timestampdiff({{ part | upper }}, date_trunc('{{ part | upper }}', {{ start }}), date_trunc('{{ part | upper }}', {{ end }}))
{%- endmacro %}


{% macro sorted_list(expression) -%}
{#- An aggregate: the values of a group as an ascending list (of values never null: Spark's
    collect_list leaves nulls out, DuckDB's list keeps them). -#}
{{ return(adapter.dispatch('sorted_list', 'linli')(expression)) }}
{%- endmacro %}

{% macro default__sorted_list(expression) -%}
list({{ expression }} order by {{ expression }})
{%- endmacro %}

{% macro spark__sorted_list(expression) -%}
array_sort(collect_list({{ expression }}))
{%- endmacro %}


{% macro replace_by_day() -%}
{#- Config of the incremental event marts: a day is the unit a build replaces — delete+insert of
    the day's rows on DuckDB, an overwrite of the day's partition on Spark. -#}
{{ return(adapter.dispatch('replace_by_day', 'linli')()) }}
{%- endmacro %}

{% macro default__replace_by_day() -%}
{{ return({'incremental_strategy': 'delete+insert', 'unique_key': 'event_date'}) }}
{%- endmacro %}

{% macro spark__replace_by_day() -%}
{{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': ['event_date'], 'file_format': 'parquet'}) }}
{%- endmacro %}


{% macro register_lake_sources() -%}
{#- On-run-start: make the raw zone's Parquet readable as the `raw` sources. DuckDB reads it
    through each source's external_location; Spark gets a view per source over the same files. -#}
{{ return(adapter.dispatch('register_lake_sources', 'linli')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
{{ return('') }}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
{%- if execute -%}
  {%- do run_query('create database if not exists raw') -%}
  {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
    {#- read_parquet('<dir>/**/*.parquet', …) → <dir>: Spark discovers the event_date=… partitions itself -#}
    {%- set files = source.config.external_location.split("'")[1] -%}
    {%- set dir = files.replace('/**/*.parquet', '').replace('/*.parquet', '') -%}
    {%- do run_query('create or replace view raw.' ~ source.identifier ~ ' as select * from parquet.`' ~ dir ~ '`') -%}
  {%- endfor -%}
{%- endif -%}
{{ return('') }}
{%- endmacro %}
