-- Roles and schemas. Roles are cluster-wide: they may already exist (Supabase, or a second
-- database on the same server), so each is created only when missing.

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  -- No BYPASSRLS here: on plain PostgreSQL service_role reaches only what is granted to it
  -- (the ops views and maintenance functions). Supabase's own service_role is left as it is.
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit;
  end if;
  -- The API's login role: owns nothing, inherits nothing, may only SET ROLE to the three above.
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.pg_has_role('authenticator', r, 'MEMBER') then
      execute pg_catalog.format('grant %I to authenticator', r);
    end if;
  end loop;
end
$$;

create schema if not exists extensions;
create schema if not exists private;
create schema if not exists auth;

revoke all on schema private from public, anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
-- auth.uid() and friends are called by column defaults and triggers running as the caller.
grant usage on schema auth to anon, authenticated, service_role;
