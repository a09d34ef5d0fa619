-- The seven tables of the design, plus the API's idempotency keys and private bookkeeping.
-- Tenant-scoped tables carry unique (tenant_id, id); references between them are composite
-- (tenant_id, x_id) foreign keys, so no row can point into another tenant and no foreign-key error
-- can reveal another tenant's id. Audit columns (created_by, ...) are plain uuids, not foreign keys
-- to auth.users: deleting a user must never rewrite or block history.

create table if not exists private.schema_version (
  version int primary key,
  installed_at timestamptz not null default now()
);

create table if not exists private.maintenance_runs (
  id bigserial primary key,
  job text not null,
  started_at timestamptz not null,
  finished_at timestamptz,
  duration_ms bigint,
  rows bigint,
  error text
);
create index if not exists maintenance_runs_job_started_idx
  on private.maintenance_runs (job, started_at desc);

create table if not exists public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint tenants_name_check check (char_length(name) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  email text not null constraint profiles_email_check check (char_length(email) <= 320),
  name text constraint profiles_name_check check (char_length(name) <= 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  deleted_by uuid,
  constraint profiles_tenant_id_id_key unique (tenant_id, id)
);

create table if not exists public.garages (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  name text not null constraint garages_name_check check (char_length(name) between 1 and 200),
  description text constraint garages_description_check check (char_length(description) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  deleted_by uuid,
  constraint garages_tenant_id_id_key unique (tenant_id, id)
);

create table if not exists public.vehicles (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  garage_id uuid,
  -- The upper bound (next year) moves with time, so a trigger enforces it.
  year integer constraint vehicles_year_check check (year >= 1886),
  make text constraint vehicles_make_check check (char_length(make) <= 100),
  model text constraint vehicles_model_check check (char_length(model) <= 100),
  trim text constraint vehicles_trim_check check (char_length(trim) <= 100),
  color text constraint vehicles_color_check check (char_length(color) <= 50),
  -- Upper-cased by trigger before this check runs.
  vin text constraint vehicles_vin_check check (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
  license_plate text
    constraint vehicles_license_plate_check check (char_length(license_plate) between 1 and 20),
  nickname text constraint vehicles_nickname_check check (char_length(nickname) <= 100),
  current_mileage integer constraint vehicles_current_mileage_check check (current_mileage >= 0),
  -- A real IANA zone: checked by trigger against pg_timezone_names.
  timezone text not null default 'America/New_York'
    constraint vehicles_timezone_length_check check (char_length(timezone) <= 64),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  deleted_by uuid,
  constraint vehicles_tenant_id_id_key unique (tenant_id, id),
  constraint vehicles_garage_fkey foreign key (tenant_id, garage_id)
    references public.garages (tenant_id, id) on delete set null (garage_id)
);
create unique index if not exists vehicles_tenant_vin_key
  on public.vehicles (tenant_id, upper(vin)) where deleted_at is null and vin is not null;
create unique index if not exists vehicles_tenant_license_plate_key
  on public.vehicles (tenant_id, upper(license_plate))
  where deleted_at is null and license_plate is not null;
create index if not exists vehicles_tenant_garage_idx on public.vehicles (tenant_id, garage_id);

create table if not exists public.vehicle_events (
  id uuid not null default gen_random_uuid(),
  date date not null
    -- The upper bound (tomorrow in the vehicle's timezone) is enforced by trigger.
    constraint vehicle_events_date_check check (date >= date '1900-01-01'),
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  vehicle_id uuid,
  type text not null constraint vehicle_events_type_check
    check (type in ('fuel', 'maintenance', 'odometer', 'document', 'reminder', 'inspection')),
  miles integer constraint vehicle_events_miles_check check (miles >= 0),
  payload jsonb not null default '{}'::jsonb
    constraint vehicle_events_payload_check check (jsonb_typeof(payload) = 'object'),
  notes text constraint vehicle_events_notes_check check (char_length(notes) <= 2000),
  created_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  constraint vehicle_events_pkey primary key (id, date),
  constraint vehicle_events_tenant_id_id_date_key unique (tenant_id, id, date),
  constraint vehicle_events_vehicle_fkey foreign key (tenant_id, vehicle_id)
    references public.vehicles (tenant_id, id) on delete cascade
) partition by range (date);
-- Declared on the parent, so every partition (present and future) gets them.
create index if not exists vehicle_events_vehicle_keyset_idx
  on public.vehicle_events (tenant_id, vehicle_id, date desc, created_at desc, id desc);
create index if not exists vehicle_events_type_idx
  on public.vehicle_events (tenant_id, type, date desc);
create index if not exists vehicle_events_tenant_keyset_idx
  on public.vehicle_events (tenant_id, date desc, created_at desc, id desc);
create index if not exists vehicle_events_vehicle_date_idx
  on public.vehicle_events (vehicle_id, date desc);
-- JSONB payload search (the design's; no route searches payloads yet).
create index if not exists vehicle_events_payload_idx
  on public.vehicle_events using gin (payload);

create table if not exists public.vehicle_images (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  vehicle_id uuid,
  -- A relative storage path or an http(s) URL: never javascript:, data:, file:, or "..".
  storage_url text not null constraint vehicle_images_storage_url_check check (
    char_length(storage_url) <= 2048 and (
      storage_url ~* '^https?://[a-z0-9.-]+(:[0-9]{1,5})?([/?#][^[:space:]]*)?$'
      or (storage_url ~ '^[A-Za-z0-9_.~%+=@/-]+$' and storage_url !~ '^//'
          and storage_url !~ '(^|/)\.\.(/|$)'))),
  thumbnail_url text constraint vehicle_images_thumbnail_url_check check (
    char_length(thumbnail_url) <= 2048 and (
      thumbnail_url ~* '^https?://[a-z0-9.-]+(:[0-9]{1,5})?([/?#][^[:space:]]*)?$'
      or (thumbnail_url ~ '^[A-Za-z0-9_.~%+=@/-]+$' and thumbnail_url !~ '^//'
          and thumbnail_url !~ '(^|/)\.\.(/|$)'))),
  caption text constraint vehicle_images_caption_check check (char_length(caption) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  deleted_by uuid,
  constraint vehicle_images_tenant_id_id_key unique (tenant_id, id),
  constraint vehicle_images_vehicle_fkey foreign key (tenant_id, vehicle_id)
    references public.vehicles (tenant_id, id) on delete cascade
);
create index if not exists vehicle_images_tenant_vehicle_idx
  on public.vehicle_images (tenant_id, vehicle_id);

create table if not exists public.reminders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  vehicle_id uuid,
  garage_id uuid,
  title text not null constraint reminders_title_check check (char_length(title) between 1 and 200),
  description text constraint reminders_description_check check (char_length(description) <= 2000),
  due_date date,
  due_mileage integer constraint reminders_due_mileage_check check (due_mileage >= 0),
  status text not null default 'active'
    constraint reminders_status_check check (status in ('active', 'completed', 'dismissed')),
  soon_days integer not null default 30 constraint reminders_soon_days_check check (soon_days > 0),
  soon_miles integer not null default 500 constraint reminders_soon_miles_check check (soon_miles > 0),
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  deleted_by uuid,
  constraint reminders_due_check check (due_date is not null or due_mileage is not null),
  constraint reminders_tenant_id_id_key unique (tenant_id, id),
  constraint reminders_vehicle_fkey foreign key (tenant_id, vehicle_id)
    references public.vehicles (tenant_id, id) on delete cascade,
  constraint reminders_garage_fkey foreign key (tenant_id, garage_id)
    references public.garages (tenant_id, id) on delete cascade
);
create index if not exists reminders_tenant_vehicle_idx on public.reminders (tenant_id, vehicle_id);
create index if not exists reminders_tenant_garage_idx on public.reminders (tenant_id, garage_id);
create index if not exists reminders_tenant_due_idx
  on public.reminders (tenant_id, status, due_date) where deleted_at is null;

-- Replayed responses for Idempotency-Key: per tenant and user.
create table if not exists public.idempotency_keys (
  tenant_id uuid not null default public.current_tenant_id()
    references public.tenants (id) on delete cascade,
  user_id uuid not null default auth.uid(),
  key text not null constraint idempotency_keys_key_check check (char_length(key) between 1 and 255),
  request_hash text not null
    constraint idempotency_keys_request_hash_check check (char_length(request_hash) <= 200),
  status_code integer,
  response_body jsonb,
  response_headers jsonb,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  constraint idempotency_keys_pkey primary key (tenant_id, user_id, key)
);
create index if not exists idempotency_keys_created_at_idx on public.idempotency_keys (created_at);
