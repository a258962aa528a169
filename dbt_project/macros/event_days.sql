{% macro current_deliveries(ledger) -%}
{#- The ledger's deliveries whose rows count: landed, and not superseded by a later delivery of the same file. -#}
select delivery_id, source, file, checksum, rows_read, rows_landed, rows_quarantined, finished_at as landed_at
from {{ ledger }}
where status = 'landed'
  and delivery_id not in (select supersedes from {{ ledger }} where supersedes is not null)
{%- endmacro %}


{% macro new_event_days(column='event_date', onward=false) -%}
{#- In an incremental run, only the days this build rebuilds (see `record_rebuilt_days`): a new
    day, or a day a corrected re-delivery replaced. The days go in as constants, so the staging
    views read those days' partitions of the lake and nothing else. A mart whose rows look back
    to earlier days (a reading's consumption since the reading before) rebuilds `onward`: every
    day from the first rebuilt one, since a late or corrected day changes the days after it. -#}
{%- if is_incremental() -%}
{%- if onward -%}
{%- set days = rebuilt_days() %}
where {{ column }} >= {{ "cast('" ~ days[0] ~ "' as date)" if days else 'cast(null as date)' }}
{%- else -%}
where {{ column }} in ({{ rebuilt_day_list() }})
{%- endif -%}
{%- endif -%}
{%- endmacro %}


{% macro build_relation(identifier) -%}
{#- A table in `build`, the schema of the build's own bookkeeping, beside the libraries. Spark has
    no databases above its schemas: none is given there. -#}
{{ return(api.Relation.create(database=target.database if target.database is defined else none, schema='build',
                              identifier=identifier, type='table')) }}
{%- endmacro %}


{% macro rebuilt_days_relation() -%}
{{ return(build_relation('rebuilt_days')) }}
{%- endmacro %}


{% macro rebuilt_days() -%}
{#- The days this build rebuilds, earliest first, as text. -#}
{%- if execute -%}
{{ return(run_query('select distinct cast(event_date as string) as d from ' ~ rebuilt_days_relation() ~ ' order by d').columns[0].values()) }}
{%- endif -%}
{{ return([]) }}
{%- endmacro %}


{% macro rebuilt_day_list() -%}
{#- The rebuilt days as date literals (a null when there are none: `in (null)` holds for no row). -#}
{%- set days = rebuilt_days() -%}
{%- for day in days %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor -%}
{%- if not days %}cast(null as date){% endif -%}
{%- endmacro %}


{% macro record_rebuilt_days() -%}
{#- On-run-start, before any node: the table `build.rebuilt_days` of the days this build rebuilds in the
    incremental event marts — those of deliveries the marts do not hold yet (a new day, a corrected
    re-delivery) and of deliveries they hold that are no longer current (superseded). Before a
    first or full build the marts hold nothing: every day. The marts also take from registries
    (where a device stands, whose a vehicle is): when the current deliveries of one of those differ
    from those the marts were built with (`build.registry_deliveries`), every day is rebuilt.
    Models and tests read it alike. -#}
{%- if execute and flags.WHICH in ('build', 'run') and builds_models() -%}
  {%- set marts = incremental_marts() -%}
  {%- set sources = [] -%}
  {%- for node, mart_sources in marts %}{% for s in mart_sources if s not in sources %}{% do sources.append(s) %}{% endfor %}{% endfor -%}
  {%- set readers = registry_readers(marts) -%}
  {%- set recorded = load_relation(build_relation('registry_deliveries')) if not flags.FULL_REFRESH else none -%}
  {#- the hook's one reading of the ledger (a file per delivery), for the days and the registries alike -#}
  {%- set ledger = build_relation('current_deliveries') -%}
  {%- do adapter.create_schema(ledger) -%}
  {%- do run_query('drop table if exists ' ~ ledger) -%}
  {%- do run_query('create table ' ~ ledger ~ ' as ' ~ current_deliveries(source('raw', 'ledger'))) -%}
  {%- set days -%}
    with current_deliveries as (
        select * from {{ ledger }}
    ),
    built as (
        {{ built_deliveries(marts) }}
    ),
    changed as (
        select delivery_id from current_deliveries where delivery_id not in (select delivery_id from built)
        union
        select delivery_id from built where delivery_id not in (select delivery_id from current_deliveries)
    ),
    registries_now as (
        select delivery_id from current_deliveries where source in ({{ quoted(readers.keys()) }})
    ),
    registries_built as (
        {% if recorded is not none -%}
        select delivery_id from {{ recorded }}
        {%- else -%}
        select cast(null as string) as delivery_id where 1 = 0
        {%- endif %}
    ),
    registries_changed as (
        select count(*) > 0 as changed from (
            select delivery_id from registries_now where delivery_id not in (select delivery_id from registries_built)
            union all
            select delivery_id from registries_built where delivery_id not in (select delivery_id from registries_now)
        ) as d
    ),
    files as (
        {{ lake_event_files(sources) }}
    )
    select distinct event_date from files
    where delivery_id in (select delivery_id from changed) or (select changed from registries_changed)
  {%- endset -%}
  {%- do run_query('drop table if exists ' ~ rebuilt_days_relation()) -%}
  {%- do run_query('create table ' ~ rebuilt_days_relation() ~ ' as ' ~ days) -%}
  {%- do record_registry_deliveries(readers, recorded, ledger) -%}
  {%- do run_query('drop table ' ~ ledger) -%}
{%- endif -%}
{{ return('') }}
{%- endmacro %}


{% macro record_registry_deliveries(readers, recorded, ledger) -%}
{#- The registries' current deliveries, as the marts now built read them: recorded for a registry
    only when this run rebuilds every incremental mart that reads it (`linli build` selects what
    lies below the sources that changed, so a changed registry's readers all run). -#}
{%- set updated = [] -%}
{%- for registry, marts in readers.items() -%}
  {%- set left_out = [] -%}
  {%- for m in marts if m not in selected_resources %}{% do left_out.append(m) %}{% endfor -%}
  {%- if not left_out %}{% do updated.append(registry) %}{% endif -%}
{%- endfor -%}
{%- if updated -%}
  {%- set target, next = build_relation('registry_deliveries'), build_relation('registry_deliveries_next') -%}
  {%- set rows -%}
    with current_deliveries as (
        select * from {{ ledger }}
    )
    {% if recorded is not none -%}
    select source, delivery_id from {{ recorded }} where source not in ({{ quoted(updated) }})
    union all
    {% endif -%}
    select source, delivery_id from current_deliveries where source in ({{ quoted(updated) }})
  {%- endset -%}
  {%- do run_query('drop table if exists ' ~ next) -%}
  {%- do run_query('create table ' ~ next ~ ' as ' ~ rows) -%}
  {%- do run_query('drop table if exists ' ~ target) -%}
  {%- do run_query('create table ' ~ target ~ ' as select * from ' ~ next) -%}
  {%- do run_query('drop table ' ~ next) -%}
{%- endif -%}
{%- endmacro %}


{% macro quoted(names) -%}
{#- Names as a list of SQL strings (a null when there are none: `in (null)` holds for no row). -#}
{{ return(("'" ~ (names | sort | join("', '")) ~ "'") if names else 'null') }}
{%- endmacro %}


{% macro registry_readers(marts) -%}
{#- {registry: [incremental marts reading it]}: the raw sources other than event feeds that each
    incremental mart reads, however far upstream. -#}
{%- set readers = {} -%}
{%- for node, _ in marts -%}
  {%- set found = [] -%}
  {%- do upstream_registries(node.unique_id, found, []) -%}
  {%- for registry in found %}{% do readers.setdefault(registry, []).append(node.unique_id) %}{% endfor -%}
{%- endfor -%}
{{ return(readers) }}
{%- endmacro %}


{% macro upstream_registries(unique_id, found, seen) -%}
{%- for up in graph.nodes[unique_id].depends_on.nodes if up not in seen -%}
  {%- do seen.append(up) -%}
  {%- if up in graph.sources -%}
    {%- set s = graph.sources[up] -%}
    {%- if s.source_name == 'raw' and s.name != 'ledger' and not s.meta.get('event_time') and s.name not in found %}{% do found.append(s.name) %}{% endif -%}
  {%- elif up in graph.nodes -%}
    {%- do upstream_registries(up, found, seen) -%}
  {%- endif -%}
{%- endfor -%}
{%- endmacro %}


{% macro refresh_ledger_snapshot() -%}
{#- `stg_lake__current_deliveries` is a table, the run's one reading of the ledger. A run that builds
    models but leaves that model out (a subset chosen in Dagster, `--select door_access`) refreshes
    it here, so no staging view reads an older ledger than the run's. -#}
{%- if execute and flags.WHICH in ('build', 'run') and builds_models() -%}
  {%- set snapshot = graph.nodes['model.linli.stg_lake__current_deliveries'] -%}
  {%- if snapshot.unique_id not in selected_resources -%}
    {%- set relation = api.Relation.create(database=snapshot.database, schema=snapshot.schema, identifier=snapshot.alias, type='table') -%}
    {%- do adapter.create_schema(relation) -%}
    {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {%- if existing is not none %}{% do adapter.drop_relation(existing) %}{% endif -%}
    {%- do run_query('create table ' ~ relation ~ ' as ' ~ current_deliveries(source('raw', 'ledger'))) -%}
  {%- endif -%}
{%- endif -%}
{{ return('') }}
{%- endmacro %}


{% macro builds_models() -%}
{#- Whether this run builds a model (a seeds-only build needs no lake, and records nothing). -#}
{%- for uid in selected_resources if uid.startswith('model.') -%}{{ return(true) }}{%- endfor -%}
{{ return(false) }}
{%- endmacro %}


{% macro incremental_marts() -%}
{#- Every model built incrementally by day, with the raw event sources its staging models read:
    [(node, [source nodes])]. Read off the graph, so a new incremental mart needs no list kept here. -#}
{%- set marts = [] -%}
{%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
  {%- set sources = [] -%}
  {%- for up in node.depends_on.nodes if up in graph.nodes -%}
    {%- for s in graph.nodes[up].depends_on.nodes if s in graph.sources and graph.sources[s].meta.get('event_time') -%}
      {%- do sources.append(graph.sources[s]) -%}
    {%- endfor -%}
  {%- endfor -%}
  {#- those built from event marts rather than from the lake follow the marts' days -#}
  {%- if sources %}{% do marts.append((node, sources)) %}{% endif -%}
{%- endfor -%}
{{ return(marts) }}
{%- endmacro %}


{% macro built_deliveries(marts) -%}
{#- The deliveries the incremental marts already hold (none before a first or full build). -#}
{%- set parts = [] -%}
{%- for node, sources in marts -%}
  {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
  {%- if relation is not none and not flags.FULL_REFRESH -%}
    {%- do parts.append('select distinct _delivery_id as delivery_id from ' ~ relation) -%}
  {%- endif -%}
{%- endfor -%}
{%- if parts -%}
{{ parts | join('\nunion\n') }}
{%- else -%}
select cast(null as string) as delivery_id where 1 = 0
{%- endif -%}
{%- endmacro %}


{% macro lake_event_files(sources) -%}
{#- (delivery_id, event_date) of every raw file of these event sources. -#}
{%- if not sources -%}
{{ return('select cast(null as string) as delivery_id, cast(null as date) as event_date where 1 = 0') }}
{%- endif -%}
{{ return(adapter.dispatch('lake_event_files', 'linli')(sources)) }}
{%- endmacro %}

{% macro default__lake_event_files(sources) -%}
{%- for s in sources %}
select distinct _delivery_id as delivery_id, event_date from {{ source(s.source_name, s.name) }}
{{ 'union' if not loop.last }}
{%- endfor %}
{%- endmacro %}

{% macro duckdb__lake_event_files(sources) -%}
{#- From the files' paths alone (…/event_date=<day>/<delivery>_<n>.parquet): no file is opened. A
    source that has delivered nothing yet reads as an empty select instead of its files. -#}
{%- for s in sources %}
{%- if s.config.external_location.startswith('read_parquet') %}
{%- set files = s.config.external_location.split("'")[1].replace('/**/*.parquet', '/event_date=*/*.parquet') %}
select split_part(parse_filename(file, true), '_', 1) as delivery_id,
       cast(regexp_extract(file, 'event_date=([0-9-]+)', 1) as date) as event_date
from glob('{{ files }}')
{%- else %}
select cast(null as string) as delivery_id, cast(null as date) as event_date where 1 = 0
{%- endif %}
{{ 'union all' if not loop.last }}
{%- endfor %}
{%- endmacro %}
