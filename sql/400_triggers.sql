-- Triggers: audit columns, sign-up, soft-delete cascades, references to soft-deleted rows, and
-- the timeline's rules (payload, immutability, odometer, corrections, reminders).
--
-- Errors the API maps (SQLSTATE, MESSAGE):
--   MM001 odometer_rollback          DETAIL names the conflicting reading, HINT is its event id
--   MM002 invalid_payload            DETAIL/COLUMN name the field (300_functions.sql)
--   MM003 event_immutable
--   MM004 reminder_not_found
--   MM005 correction_target_not_found
--   MM006 already_superseded         HINT is the id of the existing correction
--   23503 vehicle_not_found / garage_not_found (also for soft-deleted rows)
--   23514 with CONSTRAINT vehicles_year_check, vehicles_timezone_check, vehicle_events_date_check

-- Audit ---------------------------------------------------------------------------------------

create or replace function private.tg_audit() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if tg_op = 'INSERT' then
    new.created_by := coalesce(new.created_by, auth.uid());
    new.updated_at := new.created_at;
    new.updated_by := new.created_by;
    if new.deleted_at is not null then
      new.deleted_by := coalesce(new.deleted_by, auth.uid());
    end if;
  else
    new.created_at := old.created_at;
    new.created_by := old.created_by;
    new.updated_at := now();
    new.updated_by := auth.uid();
    if new.deleted_at is distinct from old.deleted_at then
      new.deleted_by := case when new.deleted_at is null then null else auth.uid() end;
    end if;
  end if;
  return new;
end
$$;

create or replace function private.tg_touch_updated_at() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  new.created_at := old.created_at;
  new.updated_at := now();
  return new;
end
$$;

create or replace trigger tenants_touch before update on public.tenants
  for each row execute function private.tg_touch_updated_at();
create or replace trigger profiles_audit before insert or update on public.profiles
  for each row execute function private.tg_audit();
create or replace trigger garages_audit before insert or update on public.garages
  for each row execute function private.tg_audit();
create or replace trigger vehicles_audit before insert or update on public.vehicles
  for each row execute function private.tg_audit();
create or replace trigger vehicle_images_audit before insert or update on public.vehicle_images
  for each row execute function private.tg_audit();
create or replace trigger reminders_audit before insert or update on public.reminders
  for each row execute function private.tg_audit();

-- Sign-up and email sync on auth.users --------------------------------------------------------

create or replace function private.tg_handle_new_user() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_claimed text := new.raw_app_meta_data ->> 'tenant_id';
  v_tenant uuid;
  v_name text := left(coalesce(nullif(btrim(new.email), ''), 'Tenant ' || new.id::text), 200);
begin
  if private.is_uuid(v_claimed) then
    v_tenant := v_claimed::uuid;
    insert into public.tenants (id, name) values (v_tenant, v_name) on conflict (id) do nothing;
  else
    insert into public.tenants (name) values (v_name) returning id into v_tenant;
  end if;
  -- One profile per user (keys lead with tenant_id: a user's id alone is no key).
  insert into public.profiles (id, tenant_id, email, created_by)
  select new.id, v_tenant, left(coalesce(new.email, ''), 320), new.id
  where not exists (select 1 from public.profiles p where p.id = new.id);
  return new;
end
$$;

create or replace function private.tg_sync_user_email() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  update public.profiles set email = left(coalesce(new.email, ''), 320)
  where id = new.id and email is distinct from left(coalesce(new.email, ''), 320);
  return new;
end
$$;

-- Placement by the service role after sign-up: Supabase Auth's admin API inserts the user, then
-- sets raw_app_meta_data (which users cannot write) with an UPDATE. A tenant_id set or changed
-- there moves the user's profile into that tenant when it exists; one that does not exist (or is
-- not a uuid) refuses the update, so the user stays where they were. raw_user_meta_data, which
-- users write themselves, never moves anyone.
create or replace function private.tg_place_user() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_claimed text := new.raw_app_meta_data ->> 'tenant_id';
  v_tenant uuid;
begin
  if v_claimed is null then
    return new;
  end if;
  if not private.is_uuid(v_claimed) then
    raise exception using errcode = '22023', message = 'tenant_not_found',
      detail = pg_catalog.format('app_metadata.tenant_id %s is not a uuid', pg_catalog.left(v_claimed, 64)),
      hint = 'the user stays in their tenant';
  end if;
  v_tenant := v_claimed::uuid;
  if not exists (select 1 from public.tenants t where t.id = v_tenant) then
    raise exception using errcode = '23503', message = 'tenant_not_found',
      detail = pg_catalog.format('tenant %s does not exist', v_tenant),
      hint = 'the user stays in their tenant';
  end if;
  update public.profiles set tenant_id = v_tenant
  where id = new.id and tenant_id is distinct from v_tenant;
  insert into public.profiles (id, tenant_id, email, created_by)
  select new.id, v_tenant, pg_catalog.left(coalesce(new.email, ''), 320), new.id
  where not exists (select 1 from public.profiles p where p.id = new.id);
  return new;
end
$$;

create or replace trigger motomind_on_auth_user_created after insert on auth.users
  for each row execute function private.tg_handle_new_user();
create or replace trigger motomind_on_auth_user_placed after update of raw_app_meta_data on auth.users
  for each row
  when (old.raw_app_meta_data -> 'tenant_id' is distinct from new.raw_app_meta_data -> 'tenant_id')
  execute function private.tg_place_user();
create or replace trigger motomind_on_auth_user_email after update of email on auth.users
  for each row when (old.email is distinct from new.email)
  execute function private.tg_sync_user_email();

-- Garages ------------------------------------------------------------------------------------

-- Soft delete: vehicles leave the garage, the garage's own reminders go with it.
create or replace function private.tg_garages_soft_delete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  update public.vehicles set garage_id = null
  where tenant_id = new.tenant_id and garage_id = new.id;
  update public.reminders set deleted_at = new.deleted_at
  where tenant_id = new.tenant_id and garage_id = new.id and vehicle_id is null
    and deleted_at is null;
  update public.reminders set garage_id = null
  where tenant_id = new.tenant_id and garage_id = new.id and vehicle_id is not null;
  return null;
end
$$;

create or replace trigger garages_soft_delete after update of deleted_at on public.garages
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function private.tg_garages_soft_delete();

-- Vehicles -----------------------------------------------------------------------------------

create or replace function private.tg_vehicles_check() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_max record;
begin
  perform private.assert_row_tenant(new.tenant_id, 'vehicles');

  new.vin := nullif(upper(btrim(new.vin)), '');
  new.license_plate := nullif(btrim(new.license_plate), '');

  if new.year is not null and new.year > pg_catalog.date_part('year', current_date)::int + 1 then
    raise exception using errcode = '23514', constraint = 'vehicles_year_check',
      message = 'invalid_year',
      detail = pg_catalog.format('year must be between 1886 and %s',
                                 pg_catalog.date_part('year', current_date)::int + 1);
  end if;

  if (tg_op = 'INSERT' or new.timezone is distinct from old.timezone)
     and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.timezone) then
    raise exception using errcode = '23514', constraint = 'vehicles_timezone_check',
      message = 'invalid_timezone',
      detail = pg_catalog.format('%s is not an IANA time zone', new.timezone);
  end if;

  if new.garage_id is not null
     and (tg_op = 'INSERT' or new.garage_id is distinct from old.garage_id
          or (old.deleted_at is not null and new.deleted_at is null))
     and not exists (select 1 from public.garages g
                     where g.tenant_id = new.tenant_id and g.id = new.garage_id
                       and g.deleted_at is null) then
    raise exception using errcode = '23503', constraint = 'vehicles_garage_fkey',
      message = 'garage_not_found', detail = pg_catalog.format('garage %s not found', new.garage_id);
  end if;

  if tg_op = 'UPDATE' and new.current_mileage is distinct from old.current_mileage then
    select * into v_max from private.vehicle_max_reading(new.tenant_id, new.id);
    if v_max.miles is not null and (new.current_mileage is null or new.current_mileage < v_max.miles) then
      raise exception using errcode = 'MM001', message = 'odometer_rollback',
        detail = pg_catalog.format('conflicts with the reading of %s miles on %s',
                                   v_max.miles, v_max.date),
        hint = v_max.id::text;
    end if;
  end if;
  return new;
end
$$;

create or replace trigger vehicles_check before insert or update on public.vehicles
  for each row execute function private.tg_vehicles_check();

create or replace function private.tg_vehicles_soft_delete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  update public.reminders set deleted_at = new.deleted_at
  where tenant_id = new.tenant_id and vehicle_id = new.id and deleted_at is null;
  update public.vehicle_images set deleted_at = new.deleted_at
  where tenant_id = new.tenant_id and vehicle_id = new.id and deleted_at is null;
  return null;
end
$$;

create or replace trigger vehicles_soft_delete after update of deleted_at on public.vehicles
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function private.tg_vehicles_soft_delete();

-- References to live parents ------------------------------------------------------------------

create or replace function private.assert_live_vehicle(p_tenant_id uuid, p_vehicle_id uuid,
  p_constraint text) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
begin
  if p_vehicle_id is not null and not exists (
       select 1 from public.vehicles v
       where v.tenant_id = p_tenant_id and v.id = p_vehicle_id and v.deleted_at is null) then
    raise exception using errcode = '23503', constraint = p_constraint,
      message = 'vehicle_not_found', detail = pg_catalog.format('vehicle %s not found', p_vehicle_id);
  end if;
end
$$;
revoke all on function private.assert_live_vehicle(uuid, uuid, text) from public;

create or replace function private.tg_reminders_check() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_revived boolean := tg_op = 'UPDATE' and old.deleted_at is not null and new.deleted_at is null;
begin
  perform private.assert_row_tenant(new.tenant_id, 'reminders');
  if tg_op = 'INSERT' or v_revived or new.vehicle_id is distinct from old.vehicle_id then
    perform private.assert_live_vehicle(new.tenant_id, new.vehicle_id, 'reminders_vehicle_fkey');
  end if;
  if new.garage_id is not null
     and (tg_op = 'INSERT' or v_revived or new.garage_id is distinct from old.garage_id)
     and not exists (select 1 from public.garages g
                     where g.tenant_id = new.tenant_id and g.id = new.garage_id
                       and g.deleted_at is null) then
    raise exception using errcode = '23503', constraint = 'reminders_garage_fkey',
      message = 'garage_not_found', detail = pg_catalog.format('garage %s not found', new.garage_id);
  end if;
  -- Completed is final (the timeline records it); dismissed may become active again.
  if tg_op = 'UPDATE' and new.status is distinct from old.status
     and not ((old.status = 'active' and new.status in ('completed', 'dismissed'))
              or (old.status = 'dismissed' and new.status = 'active')) then
    raise exception using errcode = 'MM007', message = 'invalid_status_transition',
      detail = pg_catalog.format('a %s reminder cannot become %s', old.status, new.status);
  end if;
  if new.status = 'completed' then
    if tg_op = 'INSERT' or old.status is distinct from 'completed' then
      new.completed_at := coalesce(new.completed_at, now());
    end if;
  else
    new.completed_at := null;
  end if;
  return new;
end
$$;

create or replace trigger reminders_check before insert or update on public.reminders
  for each row execute function private.tg_reminders_check();

create or replace function private.tg_vehicle_images_check() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  perform private.assert_row_tenant(new.tenant_id, 'vehicle_images');
  if tg_op = 'INSERT' or new.vehicle_id is distinct from old.vehicle_id
     or (old.deleted_at is not null and new.deleted_at is null) then
    perform private.assert_live_vehicle(new.tenant_id, new.vehicle_id, 'vehicle_images_vehicle_fkey');
  end if;
  return new;
end
$$;

create or replace trigger vehicle_images_check before insert or update on public.vehicle_images
  for each row execute function private.tg_vehicle_images_check();

-- The timeline -------------------------------------------------------------------------------

create or replace function private.tg_vehicle_events_immutable() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  -- Any session can set any custom setting, so the maintenance switch counts only for a session
  -- that logged in as the schema's owner (or a superuser) and has not SET ROLE to anyone: never
  -- for the API's login or a client role, also not when a cascade runs the delete as the owner.
  if coalesce(pg_catalog.current_setting('motomind.maintenance', true), '') = 'on'
     and coalesce(pg_catalog.current_setting('role', true), 'none') = 'none'
     and exists (select 1 from pg_catalog.pg_class c join pg_catalog.pg_roles o on o.oid = c.relowner
                 where c.oid = tg_relid
                   and pg_catalog.pg_has_role(session_user, o.oid, 'MEMBER')) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  raise exception using errcode = 'MM003', message = 'event_immutable',
    detail = 'timeline events cannot be updated or deleted; record a correction instead',
    hint = 'insert an event with payload.correction_of = the event id';
end
$$;

-- Validation, then (under a per-vehicle row lock, so concurrent appends serialize) corrections
-- and the odometer rule. The lock is an update of the vehicle's row in private.timeline_heads
-- (sql/120_timeline_heads.sql), which every append makes: under READ COMMITTED a waiter then
-- sees what the previous holder committed (each statement here takes a fresh snapshot); under
-- REPEATABLE READ or SERIALIZABLE, whose snapshot predates that commit, the update fails with a
-- serialization failure (40001, retried by the API) instead of checking against stale rows.
create or replace function private.tg_vehicle_events_before_insert() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_zone text;
  v_tomorrow date;
  v_corr uuid;
  v_target record;
  v_existing uuid;
  v_conflict record;
begin
  perform private.assert_row_tenant(new.tenant_id, 'vehicle_events');
  perform private.validate_event_payload(new.type, new.miles, new.payload);
  -- Only documents and reminders may belong to the tenant rather than to a vehicle.
  if new.vehicle_id is null and new.type not in ('document', 'reminder') then
    perform private.payload_error('vehicle_id', 'is required for ' || new.type || ' events');
  end if;

  -- The vehicle: yours and live (as RLS and soft delete would show it), and its timezone.
  if new.vehicle_id is not null then
    select v.timezone into v_zone from public.vehicles v
    where v.tenant_id = new.tenant_id and v.id = new.vehicle_id and v.deleted_at is null;
    if not found then
      raise exception using errcode = '23503', constraint = 'vehicle_events_vehicle_fkey',
        message = 'vehicle_not_found', detail = pg_catalog.format('vehicle %s not found', new.vehicle_id);
    end if;
  end if;

  -- The date window: up to tomorrow in the vehicle's timezone (UTC's without a vehicle); the
  -- lower bound is the column's CHECK.
  v_tomorrow := (pg_catalog.now() at time zone coalesce(v_zone, 'UTC'))::date + 1;
  if new.date > v_tomorrow then
    raise exception using errcode = '23514', constraint = 'vehicle_events_date_check',
      message = 'date_out_of_range', column = 'date',
      detail = pg_catalog.format(
        'date must be between 1900-01-01 and %s (tomorrow in the vehicle''s timezone)', v_tomorrow);
  end if;
  new.created_by := coalesce(new.created_by, auth.uid());

  insert into private.timeline_heads as h (tenant_id, subject_id)
  values (new.tenant_id, coalesce(new.vehicle_id, new.tenant_id))
  on conflict (tenant_id, subject_id) do update set appends = h.appends + 1;

  if new.type = 'reminder' and not exists (
       select 1 from public.reminders r
       where r.tenant_id = new.tenant_id and r.id = (new.payload ->> 'reminder_id')::uuid
         and r.deleted_at is null) then
    raise exception using errcode = 'MM004', message = 'reminder_not_found',
      detail = pg_catalog.format('reminder %s not found', new.payload ->> 'reminder_id');
  end if;

  v_corr := (new.payload ->> 'correction_of')::uuid;
  if v_corr is not null then
    -- Stored as PostgreSQL writes a uuid: corrections are looked up by that text.
    new.payload := pg_catalog.jsonb_set(new.payload, '{correction_of}', pg_catalog.to_jsonb(v_corr::text));
    select e.id, e.vehicle_id into v_target
    from public.vehicle_events e
    where e.tenant_id = new.tenant_id and e.id = v_corr
    limit 1;
    if not found or v_target.vehicle_id is distinct from new.vehicle_id then
      raise exception using errcode = 'MM005', message = 'correction_target_not_found',
        detail = pg_catalog.format('event %s not found for this vehicle', v_corr);
    end if;
    v_existing := private.correction_of(new.tenant_id, v_corr);
    if v_existing is not null then
      raise exception using errcode = 'MM006', message = 'already_superseded',
        detail = pg_catalog.format('event %s is already corrected by event %s', v_corr, v_existing),
        hint = v_existing::text;
    end if;
  end if;

  if new.miles is not null and new.vehicle_id is not null then
    -- A live reading on or before this date that is higher...
    select e.id, e.date, e.miles into v_conflict
    from public.vehicle_events e
    where e.tenant_id = new.tenant_id and e.vehicle_id = new.vehicle_id
      and e.miles is not null and e.date <= new.date and e.miles > new.miles
      and e.id is distinct from v_corr
      and private.correction_of(e.tenant_id, e.id) is null
    order by e.miles desc, e.date desc
    limit 1;
    if not found then
      -- ...or a live reading after it that is lower.
      select e.id, e.date, e.miles into v_conflict
      from public.vehicle_events e
      where e.tenant_id = new.tenant_id and e.vehicle_id = new.vehicle_id
        and e.miles is not null and e.date > new.date and e.miles < new.miles
        and e.id is distinct from v_corr
        and private.correction_of(e.tenant_id, e.id) is null
      order by e.miles asc, e.date asc
      limit 1;
    end if;
    if v_conflict.id is not null then
      raise exception using errcode = 'MM001', message = 'odometer_rollback',
        detail = pg_catalog.format('conflicts with the reading of %s miles on %s',
                                   v_conflict.miles, v_conflict.date),
        hint = v_conflict.id::text;
    end if;
  end if;
  return new;
end
$$;

-- Derived state, in the same transaction: current_mileage and the reminder's status.
create or replace function private.tg_vehicle_events_after_insert() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_max int;
begin
  if new.vehicle_id is not null and (new.miles is not null or new.payload ? 'correction_of') then
    -- Null when every reading is superseded: derived state follows the timeline both ways.
    select r.miles into v_max from private.vehicle_max_reading(new.tenant_id, new.vehicle_id) r;
    update public.vehicles set current_mileage = v_max
    where tenant_id = new.tenant_id and id = new.vehicle_id
      and current_mileage is distinct from v_max;
  end if;

  if new.type = 'reminder' and new.payload ->> 'action' in ('completed', 'dismissed') then
    update public.reminders set status = new.payload ->> 'action'
    where tenant_id = new.tenant_id and id = (new.payload ->> 'reminder_id')::uuid;
  end if;
  return null;
end
$$;

drop trigger if exists vehicle_events_immutable on public.vehicle_events;
create trigger vehicle_events_immutable before update or delete on public.vehicle_events
  for each row execute function private.tg_vehicle_events_immutable();
drop trigger if exists vehicle_events_before_insert on public.vehicle_events;
create trigger vehicle_events_before_insert before insert on public.vehicle_events
  for each row execute function private.tg_vehicle_events_before_insert();
drop trigger if exists vehicle_events_after_insert on public.vehicle_events;
create trigger vehicle_events_after_insert after insert on public.vehicle_events
  for each row execute function private.tg_vehicle_events_after_insert();

-- Trigger functions are never called directly.
revoke all on function private.tg_audit(), private.tg_touch_updated_at(),
  private.tg_handle_new_user(), private.tg_sync_user_email(), private.tg_place_user(), private.tg_garages_soft_delete(),
  private.tg_vehicles_check(), private.tg_vehicles_soft_delete(), private.tg_reminders_check(),
  private.tg_vehicle_images_check(), private.tg_vehicle_events_immutable(),
  private.tg_vehicle_events_before_insert(), private.tg_vehicle_events_after_insert()
  from public;
