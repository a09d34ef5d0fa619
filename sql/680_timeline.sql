-- The timeline API's additions: when the feed was last refreshed, readable by tenants.
-- private.maintenance_runs (and public.mv_freshness) are not theirs to read; this is only the
-- time of the last successful refresh, which says nothing about any tenant.

create or replace function public.timeline_feed_refreshed_at() returns timestamptz
language sql stable security definer set search_path = '' as $$
  select r.finished_at from private.maintenance_runs r
  where r.job = 'refresh_timeline' and r.error is null
  order by r.started_at desc, r.id desc
  limit 1
$$;
revoke all on function public.timeline_feed_refreshed_at() from public, anon, authenticated;
grant execute on function public.timeline_feed_refreshed_at() to authenticated, service_role;
