{% macro ref() -%}
{#- A model's relation without the build file's catalog: a view then names its tables within its own
    database, so the store reads the same opened as current.duckdb, as the build file itself, or
    attached under any alias. Incremental models' `this` and the sources are untouched. -#}
{%- set version = kwargs.get('version') or kwargs.get('v') -%}
{%- if varargs | length == 1 -%}
    {%- set relation = builtins.ref(varargs[0], version=version) -%}
{%- else -%}
    {%- set relation = builtins.ref(varargs[0], varargs[1], version=version) -%}
{%- endif -%}
{%- do return(relation.include(database=False)) -%}
{%- endmacro %}
