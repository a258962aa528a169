-- 社区日指标: per community and day.
{{ daily_metrics('community_code') }}
