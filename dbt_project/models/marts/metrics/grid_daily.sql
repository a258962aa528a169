-- 网格日指标: per grid and day.
{{ daily_metrics('grid_code') }}
