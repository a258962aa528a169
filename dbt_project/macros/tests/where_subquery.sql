{% macro get_where_subquery(relation) -%}
{#- dbt's own, plus one rule: in a `dbt build` other than a full refresh, a test of an incremental
    event mart or of an event staging view looks at the days this build rebuilt
    (`record_rebuilt_days`), not at every day again. Days not rebuilt were tested by the build that
    built them; a `dbt test` on its own tests every day. -#}
{%- set where = config.get('where', '') -%}
{%- if execute and flags.WHICH == 'build' and not flags.FULL_REFRESH and builds_models() and tests_rebuilt_days_only() -%}
  {%- set by_day = 'event_date in (' ~ rebuilt_day_list() ~ ')' -%}
  {%- set where = '(' ~ where ~ ') and ' ~ by_day if where else by_day -%}
{%- endif -%}
{%- if where -%}
  {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
{%- else -%}
  {%- do return(relation) -%}
{%- endif -%}
{%- endmacro %}


{% macro tests_rebuilt_days_only() -%}
{#- Whether the node under test is rebuilt by day: an incremental mart, or a staging view of events. -#}
{%- set tested = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
{%- if tested is none or tested.resource_type != 'model' -%}
  {{ return(false) }}
{%- endif -%}
{{ return(tested.config.materialized == 'incremental'
          or (tested.fqn[1] == 'staging' and 'event_date' in tested.columns)) }}
{%- endmacro %}
