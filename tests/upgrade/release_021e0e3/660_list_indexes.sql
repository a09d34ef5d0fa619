-- Keyset paging of every resource list: newest first, live rows only, tenant first for RLS.
create index if not exists garages_tenant_list_idx
  on public.garages (tenant_id, created_at desc, id desc) where deleted_at is null;
create index if not exists vehicles_tenant_list_idx
  on public.vehicles (tenant_id, created_at desc, id desc) where deleted_at is null;
create index if not exists reminders_tenant_list_idx
  on public.reminders (tenant_id, created_at desc, id desc) where deleted_at is null;
create index if not exists vehicle_images_tenant_list_idx
  on public.vehicle_images (tenant_id, created_at desc, id desc) where deleted_at is null;
