-- Row level security: enabled and forced on every table; one policy per command, to
-- authenticated, comparing with (select public.current_tenant_id()) so it is evaluated once per
-- statement. No claims -> NULL tenant -> no rows. anon and service_role get no policies.

alter table public.tenants enable row level security;
alter table public.tenants force row level security;
alter table public.profiles enable row level security;
alter table public.profiles force row level security;
alter table public.garages enable row level security;
alter table public.garages force row level security;
alter table public.vehicles enable row level security;
alter table public.vehicles force row level security;
alter table public.vehicle_events enable row level security;
alter table public.vehicle_events force row level security;
alter table public.vehicle_images enable row level security;
alter table public.vehicle_images force row level security;
alter table public.reminders enable row level security;
alter table public.reminders force row level security;
alter table public.idempotency_keys enable row level security;
alter table public.idempotency_keys force row level security;

-- tenants: read and rename your own; created by the sign-up trigger only.
drop policy if exists tenants_select on public.tenants;
create policy tenants_select on public.tenants for select to authenticated
  using (id = (select public.current_tenant_id()));
drop policy if exists tenants_update on public.tenants;
create policy tenants_update on public.tenants for update to authenticated
  using (id = (select public.current_tenant_id()))
  with check (id = (select public.current_tenant_id()));

-- profiles: see your tenant's members, edit only yourself; created by the sign-up trigger.
drop policy if exists profiles_select on public.profiles;
create policy profiles_select on public.profiles for select to authenticated
  using (tenant_id = (select public.current_tenant_id()));
drop policy if exists profiles_update on public.profiles;
create policy profiles_update on public.profiles for update to authenticated
  using (id = (select auth.uid()) and tenant_id = (select public.current_tenant_id()))
  with check (id = (select auth.uid()) and tenant_id = (select public.current_tenant_id()));

-- The tenant-owned tables: the four commands, same rule.
do $$
declare
  t text;
begin
  foreach t in array array['garages', 'vehicles', 'vehicle_images', 'reminders'] loop
    execute pg_catalog.format('drop policy if exists %I on public.%I', t || '_select', t);
    execute pg_catalog.format(
      'create policy %I on public.%I for select to authenticated
         using (tenant_id = (select public.current_tenant_id()))', t || '_select', t);
    execute pg_catalog.format('drop policy if exists %I on public.%I', t || '_insert', t);
    execute pg_catalog.format(
      'create policy %I on public.%I for insert to authenticated
         with check (tenant_id = (select public.current_tenant_id()))', t || '_insert', t);
    execute pg_catalog.format('drop policy if exists %I on public.%I', t || '_update', t);
    execute pg_catalog.format(
      'create policy %I on public.%I for update to authenticated
         using (tenant_id = (select public.current_tenant_id()))
         with check (tenant_id = (select public.current_tenant_id()))', t || '_update', t);
    execute pg_catalog.format('drop policy if exists %I on public.%I', t || '_delete', t);
    execute pg_catalog.format(
      'create policy %I on public.%I for delete to authenticated
         using (tenant_id = (select public.current_tenant_id()))', t || '_delete', t);
  end loop;
end
$$;

-- vehicle_events: append-only.
drop policy if exists vehicle_events_select on public.vehicle_events;
create policy vehicle_events_select on public.vehicle_events for select to authenticated
  using (tenant_id = (select public.current_tenant_id()));
drop policy if exists vehicle_events_insert on public.vehicle_events;
create policy vehicle_events_insert on public.vehicle_events for insert to authenticated
  with check (tenant_id = (select public.current_tenant_id()));

-- idempotency_keys: per tenant and per user.
drop policy if exists idempotency_keys_select on public.idempotency_keys;
create policy idempotency_keys_select on public.idempotency_keys for select to authenticated
  using (tenant_id = (select public.current_tenant_id()) and user_id = (select auth.uid()));
drop policy if exists idempotency_keys_insert on public.idempotency_keys;
create policy idempotency_keys_insert on public.idempotency_keys for insert to authenticated
  with check (tenant_id = (select public.current_tenant_id()) and user_id = (select auth.uid()));
drop policy if exists idempotency_keys_update on public.idempotency_keys;
create policy idempotency_keys_update on public.idempotency_keys for update to authenticated
  using (tenant_id = (select public.current_tenant_id()) and user_id = (select auth.uid()))
  with check (tenant_id = (select public.current_tenant_id()) and user_id = (select auth.uid()));
drop policy if exists idempotency_keys_delete on public.idempotency_keys;
create policy idempotency_keys_delete on public.idempotency_keys for delete to authenticated
  using (tenant_id = (select public.current_tenant_id()) and user_id = (select auth.uid()));
