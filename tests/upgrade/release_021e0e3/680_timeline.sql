-- The timeline API's additions (idempotent).

-- An earlier draft of this file exposed the same value through a security-definer function.
drop function if exists public.timeline_feed_refreshed_at();

-- When the feed was last refreshed, for GET /v1/timeline/feed. private.maintenance_runs (and
-- public.mv_freshness) are not the tenants' to read; this view shows only the time of the last
-- successful refresh, which says nothing about any tenant. Owned by the installer, so it may read
-- private (like public.timeline_feed).
create or replace view public.timeline_feed_freshness as
select (select r.finished_at from private.maintenance_runs r
        where r.job = 'refresh_timeline' and r.error is null
        order by r.started_at desc, r.id desc
        limit 1) as refreshed_at;
revoke all on table public.timeline_feed_freshness from public, anon, authenticated, service_role;
grant select on table public.timeline_feed_freshness to authenticated, service_role;

-- Corrections are few: a partial index of them answers "which event corrects this one?" (reads'
-- superseded_by) with one probe per partition, instead of scanning the tenant's events.
create index if not exists vehicle_events_corrections_idx
  on public.vehicle_events (tenant_id, (payload ->> 'correction_of'))
  where payload ? 'correction_of';
-- Every lookup of corrections goes through the partial index above (private.correction_of and its
-- set-based twins); an earlier whole-table index on correction_of answered none and cost every
-- append: dropped where an earlier install made it.
drop index if exists public.vehicle_events_correction_of_idx;
