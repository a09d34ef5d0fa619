-- Keys the API needs and every API process must share: the cursor-signing key.
-- Generated once in the database, readable only by the login role the API uses.

create table if not exists private.app_secrets (
  name text primary key,
  value bytea not null,
  created_at timestamptz not null default now()
);

-- Two random UUIDs: 244 bits from PostgreSQL's strong random source, no pgcrypto needed.
insert into private.app_secrets (name, value)
values ('cursor_signing_key',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
on conflict (name) do nothing;

create or replace function public.cursor_signing_key()
returns bytea
language sql
stable
security definer
set search_path = ''
as $$ select value from private.app_secrets where name = 'cursor_signing_key' $$;

revoke all on function public.cursor_signing_key() from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on function public.cursor_signing_key() from anon, authenticated;
  end if;
end $$;
grant execute on function public.cursor_signing_key() to authenticator;
