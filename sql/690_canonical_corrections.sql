-- payload.correction_of is stored as PostgreSQL writes a uuid since the insert trigger canonicalises
-- it (sql/400_triggers.sql). Corrections stored before that with another spelling (an upper-case
-- uuid written by direct SQL) would go unrecognised by every lookup: rewritten here, once (a no-op
-- after), and the current mileage of their vehicles derived again. The installer logs in as the
-- schema's owner, the only session the maintenance switch counts for.
do $$
declare
  v_vehicles uuid[];
begin
  perform pg_catalog.set_config('motomind.maintenance', 'on', true);
  with fixed as (
    update public.vehicle_events
    set payload = pg_catalog.jsonb_set(payload, '{correction_of}',
                                       pg_catalog.to_jsonb(pg_catalog.lower(payload ->> 'correction_of')))
    where payload ? 'correction_of' and pg_catalog.jsonb_typeof(payload -> 'correction_of') = 'string'
      and payload ->> 'correction_of' <> pg_catalog.lower(payload ->> 'correction_of')
    returning vehicle_id
  )
  select pg_catalog.array_agg(distinct vehicle_id) into v_vehicles from fixed;
  perform pg_catalog.set_config('motomind.maintenance', '', true);
  if v_vehicles is not null then
    update public.vehicles v
    set current_mileage = (select r.miles from private.vehicle_max_reading(v.tenant_id, v.id) r)
    where v.id = any (v_vehicles);
  end if;
end
$$;
