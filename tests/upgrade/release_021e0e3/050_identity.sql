-- The caller's tenant, defined before the tables because tenant_id columns default to it.
-- plpgsql so the body (which reads public.profiles) is resolved at call time, not here.
--
-- Order (contract §2): top-level claim `tenant_id`, else `app_metadata.tenant_id`, else the
-- profile of `sub`. No claims, malformed claims or a non-uuid value give NULL, which matches no
-- row in any policy. `user_metadata` is never read.
create or replace function public.current_tenant_id() returns uuid
language plpgsql stable security definer set search_path = '' as $$
declare
  v_raw text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
  v_claims jsonb;
  v_value text;
  v_sub text;
  v_tenant uuid;
  c_uuid constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
begin
  if v_raw is null then
    return null;
  end if;
  begin
    v_claims := v_raw::jsonb;
  exception when others then
    return null;
  end;
  if pg_catalog.jsonb_typeof(v_claims) is distinct from 'object' then
    return null;
  end if;

  if v_claims ? 'tenant_id' and pg_catalog.jsonb_typeof(v_claims -> 'tenant_id') <> 'null' then
    v_value := v_claims ->> 'tenant_id';
    return case when v_value ~ c_uuid then v_value::uuid end;
  end if;

  if pg_catalog.jsonb_typeof(v_claims -> 'app_metadata') = 'object'
     and pg_catalog.jsonb_typeof(v_claims -> 'app_metadata' -> 'tenant_id') is not null
     and pg_catalog.jsonb_typeof(v_claims -> 'app_metadata' -> 'tenant_id') <> 'null' then
    v_value := v_claims -> 'app_metadata' ->> 'tenant_id';
    return case when v_value ~ c_uuid then v_value::uuid end;
  end if;

  v_sub := v_claims ->> 'sub';
  if v_sub is null or v_sub !~ c_uuid then
    return null;
  end if;
  select p.tenant_id into v_tenant
  from public.profiles p
  where p.id = v_sub::uuid and p.deleted_at is null;
  return v_tenant;
end
$$;

revoke all on function public.current_tenant_id() from public;
grant execute on function public.current_tenant_id() to anon, authenticated, service_role;
