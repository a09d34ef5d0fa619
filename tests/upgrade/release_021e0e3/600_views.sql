-- The feed materialized view (private) and its tenant-filtered public surface; ops views.

-- Per live vehicle, over events that are not superseded. Spend sums mix currencies as recorded.
-- One pass over the events: the superseded ids are collected once and anti-joined by hash, then
-- grouped per vehicle (a per-event correlated probe took over 10 minutes at 10 M events).
-- An older definition (without the `superseded` step) is replaced; the public view goes with it
-- and is recreated below.
do $$
begin
  if exists (select 1 from pg_catalog.pg_matviews
             where schemaname = 'private' and matviewname = 'timeline_feed'
               and definition not like '%superseded%') then
    drop materialized view private.timeline_feed cascade;
  end if;
end
$$;

create materialized view if not exists private.timeline_feed as
with superseded as (
  select distinct c.tenant_id, c.payload ->> 'correction_of' as event_id
  from public.vehicle_events c
  where c.payload ? 'correction_of'
), per_vehicle as (
  select e.tenant_id,
         e.vehicle_id,
         max(e.date) as last_event_date,
         max(e.miles) as last_miles,
         count(*) as event_count,
         count(*) filter (where e.type = 'fuel') as fuel_count,
         count(*) filter (where e.type = 'maintenance') as maintenance_count,
         count(*) filter (where e.type = 'odometer') as odometer_count,
         count(*) filter (where e.type = 'document') as document_count,
         count(*) filter (where e.type = 'reminder') as reminder_count,
         count(*) filter (where e.type = 'inspection') as inspection_count,
         sum((e.payload ->> 'total_cost')::numeric) filter (where e.type = 'fuel') as fuel_spend,
         sum((e.payload ->> 'cost')::numeric) filter (where e.type = 'maintenance') as maintenance_spend
  from public.vehicle_events e
  where e.vehicle_id is not null
    and not exists (select 1 from superseded s
                    where s.tenant_id = e.tenant_id and s.event_id = e.id::text)
  group by e.tenant_id, e.vehicle_id
)
select v.tenant_id,
       v.id as vehicle_id,
       a.last_event_date,
       a.last_miles,
       coalesce(a.event_count, 0) as event_count,
       coalesce(a.fuel_count, 0) as fuel_count,
       coalesce(a.maintenance_count, 0) as maintenance_count,
       coalesce(a.odometer_count, 0) as odometer_count,
       coalesce(a.document_count, 0) as document_count,
       coalesce(a.reminder_count, 0) as reminder_count,
       coalesce(a.inspection_count, 0) as inspection_count,
       coalesce(a.fuel_spend, 0) as fuel_spend,
       coalesce(a.maintenance_spend, 0) as maintenance_spend
from public.vehicles v
left join per_vehicle a on a.tenant_id = v.tenant_id and a.vehicle_id = v.id
where v.deleted_at is null
with data;

create unique index if not exists timeline_feed_vehicle_id_key on private.timeline_feed (vehicle_id);
create index if not exists timeline_feed_tenant_idx on private.timeline_feed (tenant_id);
revoke all on table private.timeline_feed from public, anon, authenticated, service_role;

-- The public surface: a view owned by the installer (so it may read private), filtered by the
-- caller's tenant. security_barrier keeps callers' predicates from running before the filter.
create or replace view public.timeline_feed with (security_barrier = true) as
select f.tenant_id, f.vehicle_id, f.last_event_date, f.last_miles, f.event_count,
       f.fuel_count, f.maintenance_count, f.odometer_count, f.document_count,
       f.reminder_count, f.inspection_count, f.fuel_spend, f.maintenance_spend
from private.timeline_feed f
where f.tenant_id = (select public.current_tenant_id());
revoke all on table public.timeline_feed from public, anon, authenticated, service_role;
grant select on table public.timeline_feed to authenticated;

-- Ops views (service_role only).
create or replace view public.db_health_stats as
select s.schemaname as schema_name,
       s.relname as table_name,
       pg_catalog.pg_total_relation_size(s.relid) as total_bytes,
       pg_catalog.pg_relation_size(s.relid) as table_bytes,
       pg_catalog.pg_indexes_size(s.relid) as index_bytes,
       c.reltuples::bigint as row_estimate,
       s.n_live_tup as live_rows,
       s.n_dead_tup as dead_rows,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze
from pg_catalog.pg_stat_all_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where s.schemaname in ('public', 'private', 'auth');

-- One row per year that has a partition or must have one (this year and the two after it).
create or replace view public.partition_coverage as
with parts as (
  select c.relname as partition_name,
         (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
            'FROM \(''([0-9-]+)''\) TO \(''([0-9-]+)''\)')) as bounds,
         greatest(c.reltuples, 0)::bigint as row_estimate
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class c on c.oid = i.inhrelid
  where i.inhparent = 'public.vehicle_events'::regclass
), ranged as (
  select partition_name, bounds[1]::date as range_start, bounds[2]::date as range_end,
         row_estimate, pg_catalog.date_part('year', bounds[1]::date)::int as year
  from parts
), required as (
  select y::int as year
  from pg_catalog.generate_series(pg_catalog.date_part('year', current_date)::int,
                                  pg_catalog.date_part('year', current_date)::int + 2) as y
)
select coalesce(r.year, q.year) as year,
       r.partition_name,
       r.range_start,
       r.range_end,
       r.row_estimate,
       q.year is not null as required,
       r.partition_name is not null as covered
from ranged r
full join required q on q.year = r.year
order by 1;

-- Fed by refresh_timeline()'s log (private.maintenance_runs).
create or replace view public.mv_freshness as
select 'private.timeline_feed'::text as view_name,
       m.ispopulated as is_populated,
       ok.finished_at as last_refreshed_at,
       now() - ok.finished_at as age,
       ok.duration_ms as last_duration_ms,
       ok.rows as last_rows,
       last.started_at as last_run_at,
       last.error is null and last.id is not null as last_run_ok,
       err.error as last_error,
       err.finished_at as last_error_at
from pg_catalog.pg_matviews m
left join lateral (
  select r.finished_at, r.duration_ms, r.rows from private.maintenance_runs r
  where r.job = 'refresh_timeline' and r.error is null
  order by r.started_at desc, r.id desc limit 1) ok on true
left join lateral (
  select r.id, r.started_at, r.error from private.maintenance_runs r
  where r.job = 'refresh_timeline'
  order by r.started_at desc, r.id desc limit 1) last on true
left join lateral (
  select r.error, r.finished_at from private.maintenance_runs r
  where r.job = 'refresh_timeline' and r.error is not null
  order by r.started_at desc, r.id desc limit 1) err on true
where m.schemaname = 'private' and m.matviewname = 'timeline_feed';

revoke all on table public.db_health_stats, public.partition_coverage, public.mv_freshness
  from public, anon, authenticated, service_role;
grant select on table public.db_health_stats, public.partition_coverage, public.mv_freshness
  to service_role;
