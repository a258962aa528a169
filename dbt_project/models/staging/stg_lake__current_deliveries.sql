-- Deliveries whose rows count: landed, and not superseded by a later delivery of the same file.
-- A table: the build's one reading of the ledger (a Parquet file per delivery, so a read costs
-- in proportion to the lake's history), which every staging view then filters by; the whole
-- build sees one set of deliveries even while ingest commits more.
{{ config(materialized='table') }}
{{ current_deliveries(source('raw', 'ledger')) }}
