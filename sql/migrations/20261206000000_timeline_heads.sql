-- One row per vehicle (or, for tenant-level documents, per tenant) that has events: every append
-- updates it, which serializes a vehicle's appends at every isolation level (the odometer and
-- correction rules read the rows the previous append committed; see tg_vehicle_events_before_insert).
create table if not exists private.timeline_heads (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  subject_id uuid not null,
  appends bigint not null default 1,
  constraint timeline_heads_pkey primary key (tenant_id, subject_id)
);
revoke all on table private.timeline_heads from public;
