-- 网格: one row per grid, its polygon (GeoJSON, WGS 84) and centroid.
with grids as (
    select * from {{ ref('stg_gis__grid') }}
),

geometry as (
    select * from {{ ref('stg_gis__grid_geometry') }}
),

communities as (
    select * from {{ ref('community') }}
)

select
    g.grid_code,
    g.grid_name,
    g.community_code,
    c.street_code,
    c.banner_code,
    geometry.geometry as polygon_geojson,
    g.centroid_lon,
    g.centroid_lat
from grids g
left join geometry using (grid_code)
left join communities c using (community_code)
