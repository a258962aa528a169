{% macro generate_schema_name(custom_schema_name, node) -%}
{#- The libraries are schemas of their own (place, people, …), named as users ask for them. -#}
{{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
