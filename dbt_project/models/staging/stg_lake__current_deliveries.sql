-- Deliveries whose rows count: landed, and not superseded by a later delivery of the same file.
{{ current_deliveries(source('raw', 'ledger')) }}
