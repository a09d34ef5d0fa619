-- Yearly partitions of vehicle_events: this year and the two after it at install time, any
-- accepted year (1900 onwards) on demand.

create or replace function private.ensure_event_partition(p_year int) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_name text;
begin
  if p_year is null or p_year < 1900
     or p_year > pg_catalog.date_part('year', current_date)::int + 3 then
    raise exception using errcode = '22023', message = 'partition_year_out_of_range',
      detail = pg_catalog.format('year %s is outside 1900..%s', p_year,
                                 pg_catalog.date_part('year', current_date)::int + 3);
  end if;
  v_name := 'vehicle_events_' || p_year;
  if pg_catalog.to_regclass('public.' || v_name) is not null then
    return false;
  end if;
  -- Two callers creating the same year: the second waits here, then finds it.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('motomind.partition'), p_year);
  if pg_catalog.to_regclass('public.' || v_name) is not null then
    return false;
  end if;
  execute pg_catalog.format(
    'create table public.%I partition of public.vehicle_events for values from (%L) to (%L)',
    v_name, pg_catalog.make_date(p_year, 1, 1), pg_catalog.make_date(p_year + 1, 1, 1));
  -- Reachable only through the parent and its policies: naming a partition gets nothing.
  execute pg_catalog.format(
    'revoke all on table public.%I from public, anon, authenticated, service_role', v_name);
  execute pg_catalog.format(
    'alter table public.%I enable row level security, force row level security', v_name);
  return true;
end
$$;
revoke all on function private.ensure_event_partition(int) from public;

-- Called by the API (as authenticated) before inserting an event whose year may lack a
-- partition, and by history imports. Only dates an event may have: 1900-01-01 up to two days
-- after UTC's today (tomorrow in UTC+14, the zone furthest ahead; the insert trigger then holds
-- each event to its own vehicle's tomorrow).
create or replace function public.ensure_event_partition_for(p_date date) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_latest date := (pg_catalog.now() at time zone 'UTC')::date + 2;
begin
  if p_date is null or p_date < date '1900-01-01' or p_date > v_latest then
    raise exception using errcode = '22023', message = 'date_out_of_range',
      detail = pg_catalog.format('event date %s is outside 1900-01-01..%s', p_date, v_latest);
  end if;
  if pg_catalog.to_regclass('public.vehicle_events_' || pg_catalog.date_part('year', p_date)::int) is not null then
    return false;
  end if;
  return private.ensure_event_partition(pg_catalog.date_part('year', p_date)::int);
end
$$;
revoke all on function public.ensure_event_partition_for(date) from public;
grant execute on function public.ensure_event_partition_for(date) to authenticated, service_role;

select private.ensure_event_partition(y)
from pg_catalog.generate_series(pg_catalog.date_part('year', current_date)::int,
                                pg_catalog.date_part('year', current_date)::int + 2) as y;
