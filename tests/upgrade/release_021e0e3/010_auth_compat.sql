-- A Supabase-compatible `auth` on plain PostgreSQL. On Supabase auth.users already exists and
-- nothing here touches it or its functions: the functions below are (re)defined only in a
-- database where this file created auth.users, which private.settings records.

create table if not exists private.settings (
  key text primary key,
  value text not null
);
revoke all on table private.settings from public;

do $$
begin
  if pg_catalog.to_regclass('auth.users') is null then
    create table auth.users (
      id uuid primary key default gen_random_uuid(),
      email text,
      raw_app_meta_data jsonb not null default '{}'::jsonb,
      raw_user_meta_data jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    revoke all on table auth.users from public, anon, authenticated, service_role;
    insert into private.settings (key, value) values ('auth_compat', 'on')
    on conflict (key) do nothing;
  end if;
end
$$;

do $$
begin
  if not exists (select 1 from private.settings where key = 'auth_compat' and value = 'on') then
    return;
  end if;

  execute $f$
    create or replace function auth.jwt() returns jsonb
    language sql stable set search_path = '' as $b$
      select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim', true), ''),
        nullif(pg_catalog.current_setting('request.jwt.claims', true), '')
      )::jsonb
    $b$
  $f$;

  execute $f$
    create or replace function auth.uid() returns uuid
    language sql stable set search_path = '' as $b$
      select case when s ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                  then s::uuid end
      from (select coalesce(
              nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
              nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
            ) as s) c
    $b$
  $f$;

  execute $f$
    create or replace function auth.role() returns text
    language sql stable set search_path = '' as $b$
      select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.role', true), ''),
        nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
      )
    $b$
  $f$;

  execute $f$
    create or replace function auth.email() returns text
    language sql stable set search_path = '' as $b$
      select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.email', true), ''),
        nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
      )
    $b$
  $f$;

  grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
    to anon, authenticated, service_role;
end
$$;
