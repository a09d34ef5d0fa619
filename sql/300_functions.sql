-- Helpers: schema version, tenant guard for security-definer triggers, payload validation.

-- How many migrations are applied (app/schema.py SCHEMA_VERSION: all of this release's).
-- Checked by the API's login role in /readyz, hence executable by PUBLIC.
create or replace function public.schema_version() returns int
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select count(*)::int from private.schema_migrations
$$;
revoke all on function public.schema_version() from public;
grant execute on function public.schema_version() to public;

-- Security-definer triggers see every tenant's rows, so before they look anything up they
-- refuse, as row level security would, a row outside the caller's tenant. Callers that bypass
-- RLS (superuser, BYPASSRLS roles: installers, imports, maintenance) are not restricted.
create or replace function private.assert_row_tenant(p_tenant_id uuid, p_table text) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := pg_catalog.current_setting('role', true);
  v_privileged boolean;
begin
  if v_role is null or v_role = 'none' then
    v_role := session_user;
  end if;
  select r.rolsuper or r.rolbypassrls into v_privileged
  from pg_catalog.pg_roles r where r.rolname = v_role;
  if coalesce(v_privileged, false) then
    return;
  end if;
  if p_tenant_id is null or p_tenant_id is distinct from public.current_tenant_id() then
    raise exception using errcode = '42501',
      message = pg_catalog.format('new row violates row-level security policy for table "%s"', p_table);
  end if;
end
$$;
revoke all on function private.assert_row_tenant(uuid, text) from public;

create or replace function private.is_iso_date(p_value text) returns boolean
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
begin
  if p_value is null or p_value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then
    return false;
  end if;
  return pg_catalog.to_char(p_value::date, 'YYYY-MM-DD') = p_value;
exception when others then
  return false;
end
$$;
revoke all on function private.is_iso_date(text) from public;

create or replace function private.is_uuid(p_value text) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select p_value ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
$$;
revoke all on function private.is_uuid(text) from public;

-- A safe link: an http(s) URL (host of ASCII letters, digits, dots and hyphens; then printable
-- ASCII without spaces: anything else percent-encoded) or a relative storage path without `..`
-- segments. Never javascript:, data:, file: or a protocol-relative URL. Written without
-- case-insensitive matching or character classes, whose meaning depends on the database's
-- locale, so it means the same on every server and to the API's copy (app/schemas_common.py,
-- SafeUrl; tests/test_safe_url.py proves they agree). vehicle_images' CHECKs are the earlier,
-- looser spelling of the same rule (they also take non-ASCII and control characters).
create or replace function private.is_safe_url(p_value text) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select char_length(p_value) <= 2048 and (
    p_value ~ '^[hH][tT][tT][pP][sS]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$'
    or (p_value ~ '^[A-Za-z0-9_.~%+=@/-]+$' and p_value !~ '^//'
        and p_value !~ '(^|/)\.\.(/|$)'))
$$;
revoke all on function private.is_safe_url(text) from public;

-- Blank: nothing but white space, as the API trims it (Unicode's White_Space, which pydantic
-- strips); btrim alone trims only spaces.
create or replace function private.is_blank(p_value text) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select pg_catalog.btrim(p_value, E' \t\n\u000b\f\r\u0085\u00a0\u1680\u2000\u2001\u2002\u2003'
    '\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000') = ''
$$;
revoke all on function private.is_blank(text) from public;

-- A number a double holds: JSON's numbers as every client reads them (the API's too). A number
-- beyond the largest double (about 1.8e308) is refused rather than read as infinity elsewhere,
-- and one so close to 0 that it would be read as 0 is refused too.
create or replace function private.is_double(p_value numeric) returns boolean
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
begin
  if p_value = 0 or pg_catalog.abs(p_value) between 1e-300 and 1e300 then
    return true;  -- the everyday case, without the exception block below
  end if;
  begin
    perform p_value::double precision;
  exception when numeric_value_out_of_range then
    return false;
  end;
  return true;
end
$$;
revoke all on function private.is_double(numeric) from public;

create or replace function private.payload_error(p_field text, p_problem text) returns void
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
begin
  raise exception using errcode = 'MM002', message = 'invalid_payload',
    detail = p_field || ' ' || p_problem, column = p_field;
end
$$;
revoke all on function private.payload_error(text, text) from public;

-- Contract §5, enforced for every writer. Raises MM002 'invalid_payload'; DETAIL names the field
-- ("payload.volume must be a number greater than 0") and so does the error's COLUMN field.
-- JSON null in an optional field counts as absent.
create or replace function private.validate_event_payload(p_type text, p_miles int, p_payload jsonb)
returns void
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
declare
  v_allowed text[];
  v_required text[];
  v_key text;
  v_value jsonb;
  v_kind text;
  v_field text;
  v_item jsonb;
  v_ikey text;
  v_i int := 0;
begin
  if p_payload is null or pg_catalog.jsonb_typeof(p_payload) <> 'object' then
    perform private.payload_error('payload', 'must be a JSON object');
  end if;
  -- Only a bound against abuse by direct SQL (numbers of a thousand digits): the shapes below
  -- bound every payload well under it (at most 102 strings of 500 characters, 4 bytes each), so
  -- it never refuses a payload the API's models accept.
  if pg_catalog.pg_column_size(p_payload) > 262144 then
    perform private.payload_error('payload', 'must be at most 256 KiB');
  end if;

  case p_type
    when 'fuel' then
      v_allowed := array['volume', 'unit', 'total_cost', 'price_per_unit', 'currency', 'full_tank',
                         'missed_previous', 'station', 'fuel_type'];
      v_required := array['volume'];
    when 'maintenance' then
      v_allowed := array['service', 'items', 'cost', 'currency', 'shop'];
      v_required := array['service'];
    when 'odometer' then
      v_allowed := array[]::text[];
      v_required := array[]::text[];
    when 'document' then
      v_allowed := array['kind', 'title', 'storage_url', 'expires_on'];
      v_required := array['kind'];
    when 'reminder' then
      v_allowed := array['reminder_id', 'action'];
      v_required := array['reminder_id', 'action'];
    when 'inspection' then
      v_allowed := array['kind', 'result', 'expires_on', 'inspector'];
      v_required := array['kind', 'result'];
    else
      raise exception using errcode = 'MM002', message = 'invalid_payload',
        detail = pg_catalog.format('type %s is not an event type', coalesce(p_type, 'null')),
        column = 'type';
  end case;
  v_allowed := v_allowed || 'correction_of'::text;

  if p_type in ('fuel', 'odometer') and p_miles is null then
    perform private.payload_error('miles', 'is required for ' || p_type || ' events');
  end if;

  foreach v_key in array v_required loop
    if pg_catalog.jsonb_typeof(p_payload -> v_key) is null
       or pg_catalog.jsonb_typeof(p_payload -> v_key) = 'null' then
      perform private.payload_error('payload.' || v_key, 'is required');
    end if;
  end loop;

  for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_payload) e order by e.key loop
    v_field := 'payload.' || v_key;
    if not (v_key = any (v_allowed)) then
      perform private.payload_error(v_field, 'is not a field of ' || p_type || ' events');
    end if;
    v_kind := pg_catalog.jsonb_typeof(v_value);
    if v_kind = 'null' then
      continue;
    end if;
    if v_kind = 'string' and char_length(v_value #>> '{}') > 500 then
      perform private.payload_error(v_field, 'must be at most 500 characters');
    end if;

    case
      when v_key = 'volume' then
        if v_kind <> 'number' or not private.is_double((v_value #>> '{}')::numeric)
           or (v_value #>> '{}')::numeric <= 0 then
          perform private.payload_error(v_field, 'must be a number greater than 0');
        end if;
      when v_key in ('total_cost', 'price_per_unit', 'cost') then
        if v_kind <> 'number' or not private.is_double((v_value #>> '{}')::numeric)
           or (v_value #>> '{}')::numeric < 0 then
          perform private.payload_error(v_field, 'must be a number greater than or equal to 0');
        end if;
      when v_key = 'unit' then
        if v_kind <> 'string' or (v_value #>> '{}') not in ('gal', 'l') then
          perform private.payload_error(v_field, 'must be one of gal, l');
        end if;
      when v_key = 'currency' then
        if v_kind <> 'string' or (v_value #>> '{}') !~ '^[A-Z]{3}$' then
          perform private.payload_error(v_field, 'must be an ISO 4217 code (three upper-case letters)');
        end if;
      when v_key in ('full_tank', 'missed_previous') then
        if v_kind <> 'boolean' then
          perform private.payload_error(v_field, 'must be a boolean');
        end if;
      when v_key in ('station', 'fuel_type', 'shop', 'title', 'inspector') then
        if v_kind <> 'string' then
          perform private.payload_error(v_field, 'must be a string');
        end if;
      when v_key = 'service' or (v_key = 'kind' and p_type = 'inspection') then
        if v_kind <> 'string' or private.is_blank(v_value #>> '{}') then
          perform private.payload_error(v_field, 'must be a non-empty string');
        end if;
      when v_key = 'kind' then
        if v_kind <> 'string' or (v_value #>> '{}') not in
           ('registration', 'insurance', 'title', 'receipt', 'manual', 'other') then
          perform private.payload_error(v_field,
            'must be one of registration, insurance, title, receipt, manual, other');
        end if;
      when v_key = 'result' then
        if v_kind <> 'string' or (v_value #>> '{}') not in ('pass', 'fail') then
          perform private.payload_error(v_field, 'must be one of pass, fail');
        end if;
      when v_key = 'action' then
        if v_kind <> 'string' or (v_value #>> '{}') not in ('created', 'completed', 'dismissed', 'snoozed') then
          perform private.payload_error(v_field, 'must be one of created, completed, dismissed, snoozed');
        end if;
      when v_key = 'expires_on' then
        if v_kind <> 'string' or not private.is_iso_date(v_value #>> '{}') then
          perform private.payload_error(v_field, 'must be a date (YYYY-MM-DD)');
        end if;
      when v_key = 'storage_url' then
        if v_kind <> 'string' or not private.is_safe_url(v_value #>> '{}') then
          perform private.payload_error(v_field, 'must be a relative storage path or an http(s) URL');
        end if;
      when v_key in ('reminder_id', 'correction_of') then
        if v_kind <> 'string' or not private.is_uuid(v_value #>> '{}') then
          perform private.payload_error(v_field, 'must be a uuid');
        end if;
      when v_key = 'items' then
        if v_kind <> 'array' then
          perform private.payload_error(v_field, 'must be an array of {name, cost}');
        end if;
        if pg_catalog.jsonb_array_length(v_value) > 100 then
          perform private.payload_error(v_field, 'must have at most 100 items');
        end if;
        for v_item in select a.value from pg_catalog.jsonb_array_elements(v_value) a loop
          v_field := pg_catalog.format('payload.items[%s]', v_i);
          if pg_catalog.jsonb_typeof(v_item) <> 'object' then
            perform private.payload_error(v_field, 'must be an object {name, cost}');
          end if;
          for v_ikey in select k from pg_catalog.jsonb_object_keys(v_item) k loop
            if v_ikey not in ('name', 'cost') then
              perform private.payload_error(v_field || '.' || v_ikey, 'is not a field of an item');
            end if;
          end loop;
          if pg_catalog.jsonb_typeof(v_item -> 'name') is distinct from 'string'
             or private.is_blank(v_item ->> 'name') or char_length(v_item ->> 'name') > 500 then
            perform private.payload_error(v_field || '.name', 'is required (a non-empty string of at most 500 characters)');
          end if;
          if pg_catalog.jsonb_typeof(v_item -> 'cost') is not null
             and pg_catalog.jsonb_typeof(v_item -> 'cost') <> 'null'
             and (pg_catalog.jsonb_typeof(v_item -> 'cost') <> 'number'
                  or not private.is_double((v_item ->> 'cost')::numeric)
                  or (v_item ->> 'cost')::numeric < 0) then
            perform private.payload_error(v_field || '.cost', 'must be a number greater than or equal to 0');
          end if;
          v_i := v_i + 1;
        end loop;
      else
        null;
    end case;
  end loop;
end
$$;
revoke all on function private.validate_event_payload(text, int, jsonb) from public;

-- The event that corrects an event (payload.correction_of = its id), if any: what "superseded"
-- means, for the odometer rule, current_mileage and the one-correction check. The partial index
-- of corrections (sql/680_timeline.sql) answers it. Reads look a page's corrections up in one go
-- (app/timeline/queries.py), the feed a refresh's (sql/600_views.sql), by the same predicate.
create or replace function private.correction_of(p_tenant_id uuid, p_event_id uuid) returns uuid
language sql stable set search_path = pg_catalog, pg_temp as $$
  select c.id from public.vehicle_events c
  where c.tenant_id = p_tenant_id and c.payload ? 'correction_of'
    and (c.payload ->> 'correction_of') = p_event_id::text
  limit 1
$$;
revoke all on function private.correction_of(uuid, uuid) from public;

-- The highest reading among the vehicle's events that are not superseded.
create or replace function private.vehicle_max_reading(p_tenant_id uuid, p_vehicle_id uuid,
  out id uuid, out date date, out miles int)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select e.id, e.date, e.miles
  from public.vehicle_events e
  where e.tenant_id = p_tenant_id and e.vehicle_id = p_vehicle_id and e.miles is not null
    and private.correction_of(e.tenant_id, e.id) is null
  order by e.miles desc, e.date desc
  limit 1
$$;
revoke all on function private.vehicle_max_reading(uuid, uuid) from public;
