-- Scheduled maintenance (pg_cron when available, scheduled by the API otherwise). Each run is
-- logged in private.maintenance_runs, which feeds public.mv_freshness. Failures are logged and
-- returned, not raised, so the log row survives; the result says what happened.

create or replace function public.refresh_timeline() returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_rows bigint;
  v_ms bigint;
  v_error text;
  v_concurrently boolean;
begin
  -- One refresh at a time; a second caller skips instead of queueing.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('motomind.refresh_timeline')) then
    return pg_catalog.jsonb_build_object('job', 'refresh_timeline', 'ok', true, 'skipped', true);
  end if;
  begin
    select m.ispopulated into v_concurrently
    from pg_catalog.pg_matviews m
    where m.schemaname = 'private' and m.matviewname = 'timeline_feed';
    if v_concurrently then
      refresh materialized view concurrently private.timeline_feed;
    else
      refresh materialized view private.timeline_feed;
    end if;
    select count(*) into v_rows from private.timeline_feed;
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;
  v_ms := (extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::bigint;
  insert into private.maintenance_runs (job, started_at, finished_at, duration_ms, rows, error)
  values ('refresh_timeline', v_started, pg_catalog.clock_timestamp(), v_ms, v_rows, v_error);
  return pg_catalog.jsonb_build_object('job', 'refresh_timeline', 'ok', v_error is null,
    'skipped', false, 'rows', v_rows, 'duration_ms', v_ms, 'error', v_error);
end
$$;

-- Keeps partitions for this year and the two after it.
create or replace function public.create_next_year_partition() returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_created bigint := 0;
  v_year int;
  v_ms bigint;
  v_error text;
begin
  begin
    for v_year in
      select y from pg_catalog.generate_series(pg_catalog.date_part('year', current_date)::int,
                                               pg_catalog.date_part('year', current_date)::int + 2) y
    loop
      if private.ensure_event_partition(v_year) then
        v_created := v_created + 1;
      end if;
    end loop;
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;
  v_ms := (extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::bigint;
  insert into private.maintenance_runs (job, started_at, finished_at, duration_ms, rows, error)
  values ('create_next_year_partition', v_started, pg_catalog.clock_timestamp(), v_ms, v_created, v_error);
  return pg_catalog.jsonb_build_object('job', 'create_next_year_partition', 'ok', v_error is null,
    'created', v_created, 'duration_ms', v_ms, 'error', v_error);
end
$$;

create or replace function public.run_scheduled_maintenance() returns jsonb
language sql security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_array(public.create_next_year_partition(), public.refresh_timeline())
$$;

revoke all on function public.refresh_timeline(), public.create_next_year_partition(),
  public.run_scheduled_maintenance() from public, anon, authenticated;
grant execute on function public.refresh_timeline(), public.create_next_year_partition(),
  public.run_scheduled_maintenance() to service_role;
