-- A Supabase project's database as far as MotoMind can tell, built as Supabase builds it: run by
-- the bootstrap superuser `supabase_admin` on an empty cluster. The facts (issue 15):
-- - `postgres` (the dashboard's user) is not a superuser: CREATEROLE and BYPASSRLS, owner of
--   `public`, may create schemas, is no member of supabase_auth_admin, cannot create objects in
--   `auth` or `storage`, and has ALL on auth's tables (so it can put triggers on auth.users);
-- - the reserved roles are protected (supautils): `postgres` may grant anon, authenticated and
--   service_role, but cannot alter authenticator (here: no ADMIN option on it, which PostgreSQL
--   16+ requires of a CREATEROLE role);
-- - auth.users (with Supabase Auth's columns), auth.identities, auth.uid(), auth.jwt(),
--   auth.role(), auth.email() are owned by supabase_auth_admin.

create role postgres login createrole createdb bypassrls password 'postgres-db-password';
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit password 'not-yours-to-know';
grant anon, authenticated, service_role to authenticator;
create role supabase_auth_admin login noinherit createrole;
alter role supabase_auth_admin set search_path = auth;
create role supabase_storage_admin login noinherit createrole;
create role dashboard_user nologin createrole createdb;
grant anon, authenticated, service_role to postgres with admin option;

grant all on database postgres to postgres;
alter schema public owner to postgres;
grant usage on schema public to anon, authenticated, service_role;

create schema extensions authorization postgres;
grant usage on schema extensions to anon, authenticated, service_role;

create schema auth authorization supabase_auth_admin;
create schema storage authorization supabase_storage_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres, dashboard_user;
grant usage on schema storage to anon, authenticated, service_role, postgres, dashboard_user;

set role supabase_auth_admin;

-- Supabase Auth's users table, column for column.
create table auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);

create table auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key,
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);

create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
create function auth.role() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
create function auth.email() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'))::text
$$;

reset role;

grant all on all tables in schema auth to postgres, dashboard_user;
grant execute on all functions in schema auth to postgres, dashboard_user, anon, authenticated,
  service_role;
