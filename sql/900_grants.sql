-- Privileges, stated in full on every install (Supabase's default privileges grant everything in
-- public to anon/authenticated/service_role, so each table starts from a clean revoke).
-- authenticated may write only client-writable columns: never id (a primary-key collision would
-- reveal another tenant's id), audit columns, or derived ones. tenant_id may be given; the
-- policies refuse any tenant but the caller's. anon gets nothing; authenticator only its
-- memberships.

revoke all on table public.tenants, public.profiles, public.garages, public.vehicles,
  public.vehicle_events, public.vehicle_images, public.reminders, public.idempotency_keys
  from public, anon, authenticated, service_role, authenticator;

grant select on table public.tenants, public.profiles, public.garages, public.vehicles,
  public.vehicle_events, public.vehicle_images, public.reminders, public.idempotency_keys
  to authenticated;

grant update (name) on table public.tenants to authenticated;
grant update (name) on table public.profiles to authenticated;

grant insert (tenant_id, name, description) on table public.garages to authenticated;
grant update (name, description, deleted_at) on table public.garages to authenticated;
grant delete on table public.garages to authenticated;

grant insert (tenant_id, garage_id, year, make, model, trim, color, vin, license_plate, nickname,
              current_mileage, timezone)
  on table public.vehicles to authenticated;
grant update (garage_id, year, make, model, trim, color, vin, license_plate, nickname,
              current_mileage, timezone, deleted_at)
  on table public.vehicles to authenticated;
grant delete on table public.vehicles to authenticated;

-- Append-only: no UPDATE or DELETE at all.
grant insert (tenant_id, vehicle_id, date, type, miles, payload, notes)
  on table public.vehicle_events to authenticated;

grant insert (tenant_id, vehicle_id, storage_url, thumbnail_url, caption)
  on table public.vehicle_images to authenticated;
grant update (vehicle_id, storage_url, thumbnail_url, caption, deleted_at)
  on table public.vehicle_images to authenticated;
grant delete on table public.vehicle_images to authenticated;

grant insert (tenant_id, vehicle_id, garage_id, title, description, due_date, due_mileage, status,
              soon_days, soon_miles)
  on table public.reminders to authenticated;
grant update (vehicle_id, garage_id, title, description, due_date, due_mileage, status,
              soon_days, soon_miles, deleted_at)
  on table public.reminders to authenticated;
grant delete on table public.reminders to authenticated;

grant insert (tenant_id, user_id, key, request_hash, status_code, response_body, response_headers,
              completed_at)
  on table public.idempotency_keys to authenticated;
grant update (status_code, response_body, response_headers, completed_at)
  on table public.idempotency_keys to authenticated;
grant delete on table public.idempotency_keys to authenticated;

-- Partitions are reached only through the parent.
do $$
declare
  r record;
begin
  for r in
    select c.oid::regclass as rel
    from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'public.vehicle_events'::regclass
  loop
    execute pg_catalog.format('revoke all on table %s from public, anon, authenticated, service_role',
                              r.rel);
  end loop;
end
$$;

-- private: nothing for anyone but the owner.
revoke all on all tables in schema private from public, anon, authenticated, service_role;
revoke all on all sequences in schema private from public, anon, authenticated, service_role;
revoke all on all functions in schema private from public, anon, authenticated, service_role;

-- Functions in public: Supabase grants EXECUTE on new functions to its roles, so restate.
revoke all on function public.current_tenant_id(), public.schema_version(),
  public.ensure_event_partition_for(date), public.refresh_timeline(),
  public.create_next_year_partition(), public.run_scheduled_maintenance()
  from public, anon, authenticated, service_role;
grant execute on function public.schema_version() to public;
grant execute on function public.current_tenant_id() to anon, authenticated, service_role;
grant execute on function public.ensure_event_partition_for(date) to authenticated, service_role;
grant execute on function public.refresh_timeline(), public.create_next_year_partition(),
  public.run_scheduled_maintenance() to service_role;

