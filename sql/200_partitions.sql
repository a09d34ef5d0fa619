-- Partitions of vehicle_events. Yearly from the install year on: this year and the two after it
-- exist at install and are kept ahead by maintenance. Every earlier accepted date (1900 onwards)
-- is covered at install by history partitions, one per gap between the partitions that exist
-- (on a fresh database one: 1900 up to the install year). So no tenant's input can add partitions:
-- their count grows by one a year, through maintenance, whatever dates clients send.
--
-- Bounds are read back with DateStyle pinned to ISO, so they parse whatever the session sets.

-- Every partition's range, in order.
create or replace function private.event_partition_ranges(
  out partition regclass, out range_start date, out range_end date)
returns setof record
language sql stable set search_path = pg_catalog, pg_temp set datestyle = iso, ymd as $$
  select c.oid::pg_catalog.regclass, b[1]::date, b[2]::date
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class c on c.oid = i.inhrelid
  cross join lateral pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                             'FROM \(''([0-9-]+)''\) TO \(''([0-9-]+)''\)') b
  where i.inhparent = 'public.vehicle_events'::pg_catalog.regclass
  order by 2
$$;
revoke all on function private.event_partition_ranges() from public;

create or replace function private.create_event_partition(p_name text, p_from date, p_to date)
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  execute pg_catalog.format(
    'create table public.%I partition of public.vehicle_events for values from (%L) to (%L)',
    p_name, p_from, p_to);
  -- Reachable only through the parent and its policies: naming a partition gets nothing.
  execute pg_catalog.format(
    'revoke all on table public.%I from public, anon, authenticated, service_role', p_name);
  execute pg_catalog.format(
    'alter table public.%I enable row level security, force row level security', p_name);
end
$$;
revoke all on function private.create_event_partition(text, date, date) from public;

-- A yearly partition for p_year, unless a partition already covers that year. Maintenance and
-- installs call it for this year and the two after; nothing lets a client choose the year.
create or replace function private.ensure_event_partition(p_year int) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_this_year int := pg_catalog.date_part('year', current_date)::int;
  v_from date;
begin
  if p_year is null or p_year < 1900 or p_year > v_this_year + 3 then
    raise exception using errcode = '22023', message = 'partition_year_out_of_range',
      detail = pg_catalog.format('year %s is outside 1900..%s', p_year, v_this_year + 3);
  end if;
  v_from := pg_catalog.make_date(p_year, 1, 1);
  if exists (select 1 from private.event_partition_ranges() r
             where r.range_start < v_from + interval '1 year' and r.range_end > v_from) then
    return false;
  end if;
  -- Two callers creating the same year: the second waits here, then finds it.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('motomind.partition'), 0);
  if exists (select 1 from private.event_partition_ranges() r
             where r.range_start < v_from + interval '1 year' and r.range_end > v_from) then
    return false;
  end if;
  perform private.create_event_partition('vehicle_events_' || p_year, v_from,
                                         pg_catalog.make_date(p_year + 1, 1, 1));
  return true;
end
$$;
revoke all on function private.ensure_event_partition(int) from public;

-- History partitions: every gap in 1900-01-01 .. the start of this year gets one partition,
-- named after the years it covers (vehicle_events_history_1900_2025). Returns how many it made.
create or replace function private.ensure_history_partitions() returns int
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_end date := pg_catalog.make_date(pg_catalog.date_part('year', current_date)::int, 1, 1);
  v_cursor date := date '1900-01-01';
  v_created int := 0;
  r record;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('motomind.partition'), 0);
  for r in select * from private.event_partition_ranges() loop
    exit when v_cursor >= v_end;
    continue when r.range_end <= v_cursor;
    if r.range_start > v_cursor then
      perform private.create_event_partition(
        pg_catalog.format('vehicle_events_history_%s_%s',
                          pg_catalog.date_part('year', v_cursor)::int,
                          pg_catalog.date_part('year', least(r.range_start, v_end))::int - 1),
        v_cursor, least(r.range_start, v_end));
      v_created := v_created + 1;
    end if;
    v_cursor := greatest(v_cursor, r.range_end);
  end loop;
  if v_cursor < v_end then
    perform private.create_event_partition(
      pg_catalog.format('vehicle_events_history_%s_%s', pg_catalog.date_part('year', v_cursor)::int,
                        pg_catalog.date_part('year', v_end)::int - 1),
      v_cursor, v_end);
    v_created := v_created + 1;
  end if;
  return v_created;
end
$$;
revoke all on function private.ensure_history_partitions() from public;

-- Called by the API (as authenticated) before inserting an event dated outside the years that
-- always have a partition. Only dates an event may have: 1900-01-01 up to two days after UTC's
-- today (tomorrow in UTC+14, the zone furthest ahead; the insert trigger then holds each event to
-- its own vehicle's tomorrow). Every such date is covered at install; this repairs a database
-- whose maintenance has not run, never with a partition a client's date chooses: the current
-- years' partitions, or history that fills gaps.
create or replace function public.ensure_event_partition_for(p_date date) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_latest date := (pg_catalog.now() at time zone 'UTC')::date + 2;
  v_this_year int := pg_catalog.date_part('year', current_date)::int;
  v_year int := pg_catalog.date_part('year', p_date)::int;
begin
  if p_date is null or p_date < date '1900-01-01' or p_date > v_latest then
    raise exception using errcode = '22023', message = 'date_out_of_range', column = 'date',
      detail = pg_catalog.format(
        'date must be between 1900-01-01 and tomorrow in the vehicle''s timezone (%s at the latest)',
        v_latest);
  end if;
  if exists (select 1 from private.event_partition_ranges() r
             where r.range_start <= p_date and r.range_end > p_date) then
    return false;
  end if;
  if v_year >= v_this_year then
    return private.ensure_event_partition(v_year);
  end if;
  return private.ensure_history_partitions() > 0;
end
$$;
revoke all on function public.ensure_event_partition_for(date) from public;
grant execute on function public.ensure_event_partition_for(date) to authenticated, service_role;

select private.ensure_event_partition(y)
from pg_catalog.generate_series(pg_catalog.date_part('year', current_date)::int,
                                pg_catalog.date_part('year', current_date)::int + 2) as y;
select private.ensure_history_partitions();
