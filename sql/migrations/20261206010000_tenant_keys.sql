-- Every key of a tenant table leads with tenant_id, so the schema can be distributed by tenant_id
-- (Citus: docs/citus.md) when one server is outgrown. The primary keys on (id) become
-- (tenant_id, id), taking over from the unique (tenant_id, id) the composite foreign keys
-- referenced, which are re-pointed at them. auth.users stays Supabase's (a reference table there),
-- so profiles keep their foreign key to it.

alter table public.vehicles drop constraint vehicles_garage_fkey;
alter table public.vehicle_events drop constraint vehicle_events_vehicle_fkey;
alter table public.vehicle_images drop constraint vehicle_images_vehicle_fkey;
alter table public.reminders drop constraint reminders_vehicle_fkey,
  drop constraint reminders_garage_fkey;

alter table public.profiles drop constraint profiles_pkey,
  drop constraint profiles_tenant_id_id_key,
  add constraint profiles_pkey primary key (tenant_id, id);
alter table public.garages drop constraint garages_pkey,
  drop constraint garages_tenant_id_id_key,
  add constraint garages_pkey primary key (tenant_id, id);
alter table public.vehicles drop constraint vehicles_pkey,
  drop constraint vehicles_tenant_id_id_key,
  add constraint vehicles_pkey primary key (tenant_id, id);
alter table public.vehicle_images drop constraint vehicle_images_pkey,
  drop constraint vehicle_images_tenant_id_id_key,
  add constraint vehicle_images_pkey primary key (tenant_id, id);
alter table public.reminders drop constraint reminders_pkey,
  drop constraint reminders_tenant_id_id_key,
  add constraint reminders_pkey primary key (tenant_id, id);
alter table public.vehicle_events drop constraint vehicle_events_pkey,
  drop constraint vehicle_events_tenant_id_id_date_key,
  add constraint vehicle_events_pkey primary key (tenant_id, id, date);

-- A profile per user: its id is the user's (the foreign key), made once by the sign-up trigger.
create index profiles_id_idx on public.profiles (id);

alter table public.vehicles add constraint vehicles_garage_fkey foreign key (tenant_id, garage_id)
  references public.garages (tenant_id, id) on delete set null (garage_id);
alter table public.vehicle_events add constraint vehicle_events_vehicle_fkey
  foreign key (tenant_id, vehicle_id) references public.vehicles (tenant_id, id) on delete cascade;
alter table public.vehicle_images add constraint vehicle_images_vehicle_fkey
  foreign key (tenant_id, vehicle_id) references public.vehicles (tenant_id, id) on delete cascade;
alter table public.reminders
  add constraint reminders_vehicle_fkey foreign key (tenant_id, vehicle_id)
    references public.vehicles (tenant_id, id) on delete cascade,
  add constraint reminders_garage_fkey foreign key (tenant_id, garage_id)
    references public.garages (tenant_id, id) on delete cascade;
