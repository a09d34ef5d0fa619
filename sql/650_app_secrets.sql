-- Keys the API needs and every API process must share: the cursor-signing key.
-- Generated once in the database, readable only by the login role the API uses.

-- The table and its key: sql/migrations/20261201000000_baseline.sql.

create or replace function public.cursor_signing_key()
returns bytea
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$ select value from private.app_secrets where name = 'cursor_signing_key' $$;

revoke all on function public.cursor_signing_key() from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on function public.cursor_signing_key() from anon, authenticated;
  end if;
end $$;
grant execute on function public.cursor_signing_key() to authenticator;
