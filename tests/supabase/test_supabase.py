"""Deploying on Supabase, tried as a new user would: the README's block, run as written against
a database built the way Supabase builds one (tests/supabase/bootstrap.sql), then Supabase Auth's
own ways of making users and tokens against the API it started."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from jose import jwt

from app.database.migrate import SCHEMA_VERSION
from tests.pgbouncer import free_port
from tests.serve_process import tail
from tests.supabase.cluster import POSTGRES_PASSWORD, SupabaseCluster, supabase_cluster

README = Path(__file__).resolve().parents[2] / "README.md"
API_PASSWORD = "api-login-" + "p" * 24
JWT_SECRET = "supabase-project-jwt-secret-" + "s" * 24
SUPABASE_URL = "http://127.0.0.1:9"  # a JWKS nobody serves: only HS256 tokens are used here
ISSUER = f"{SUPABASE_URL}/auth/v1"
RESERVED = (
    "anon",
    "authenticated",
    "service_role",
    "authenticator",
    "supabase_auth_admin",
    "supabase_storage_admin",
    "dashboard_user",
    "postgres",
)

# Everything a re-run of `db init` could change, one line per object.
CATALOG = """
select coalesce(string_agg(x, E'\\n' order by x), '') from (
  select 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' '
         || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '')
         || coalesce(array_to_string(c.reloptions, ','), '') || c.relrowsecurity::text
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1::text[])
  union all
  select 'fn ' || p.oid::regprocedure::text || ' ' || pg_get_userbyid(p.proowner) || ' '
         || md5(p.prosrc) || coalesce(array_to_string(p.proconfig, ','), '')
         || coalesce(p.proacl::text, '') || p.prosecdef::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname = any($1::text[])
  union all
  select 'policy ' || schemaname || '.' || tablename || '.' || policyname || ' '
         || md5(coalesce(qual, '') || coalesce(with_check, '') || array_to_string(roles, ','))
  from pg_policies where schemaname = any($1::text[])
  union all
  select 'trigger ' || t.tgrelid::regclass::text || '.' || t.tgname || ' '
         || t.tgfoid::regprocedure::text
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
  join pg_namespace n on n.oid = c.relnamespace
  where not t.tgisinternal and n.nspname = any($1::text[])
) s(x)
"""
ROLES = """
select coalesce(string_agg(x, E'\\n' order by x), '') from (
  select 'role ' || rolname || ' ' || concat_ws(',', rolsuper, rolinherit, rolcreaterole,
         rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconfig::text)
  from pg_roles where rolname = any($1::text[])
  union all
  select 'member ' || m.roleid::regrole::text || ' > ' || m.member::regrole::text || ' '
         || m.admin_option::text
  from pg_auth_members m
  where m.roleid::regrole::text = any($1::text[]) and m.member::regrole::text <> $2
) s(x)
"""
OURS = ["public", "private", "auth", "extensions", "storage"]


@dataclass
class Deployment:
    cluster: SupabaseCluster
    url: str
    log: Path
    auth_before: str  # the auth schema as Supabase made it, before the README was followed
    roles_before: str
    env: dict[str, str]


def readme_block() -> str:
    """The first shell block of the README's Supabase section."""
    text = README.read_text()
    section = text[text.index("## Deploying against Supabase") :]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "the Supabase section has no shell block"
    return found.group(1)


def filled_in(block: str, cluster: SupabaseCluster, port: int) -> str:
    """The placeholders a user replaces, replaced; nothing else changed."""
    values = {
        "db.<ref>.supabase.co:5432": f"127.0.0.1:{cluster.port}",
        "<db password>": POSTGRES_PASSWORD,
        "<a new password for the API>": API_PASSWORD,
        "https://<ref>.supabase.co": SUPABASE_URL,
        "<the project JWT secret>": JWT_SECRET,
        "--host 0.0.0.0 --port 8000": f"--host 127.0.0.1 --port {port}",
    }
    for placeholder, value in values.items():
        assert placeholder in block, f"the README no longer says {placeholder}"
        block = block.replace(placeholder, value)
    assert "<" not in block, block
    return block


async def fetch(cluster: SupabaseCluster, user: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(cluster.local_url(user))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def start_script(script: str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the block's `motomind serve` is stopped with it
        )


def db_init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "db", "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[SupabaseCluster]:
    with supabase_cluster() as made:
        yield made


@pytest.fixture(scope="module")
async def deployed(
    cluster: SupabaseCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    auth_before = await fetch(cluster, "supabase_admin", CATALOG, ["auth"])
    roles_before = await fetch(cluster, "supabase_admin", ROLES, list(RESERVED), "motomind_api")
    workdir = tmp_path_factory.mktemp("supabase-readme")
    port = free_port()
    log = workdir / "readme.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "SUPABASE_", "DB_", "JWT_", "MOTOMIND_", "WEB_", "LOG_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = filled_in(readme_block(), cluster, port)
    proc = start_script(script, workdir, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert proc.poll() is None, f"the README block stopped:\n{tail(log)}"
                assert time.monotonic() < deadline, f"the API never became ready:\n{tail(log)}"
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        env.update(
            DATABASE_ADMIN_URL=cluster.url("postgres", POSTGRES_PASSWORD),
            MOTOMIND_API_PASSWORD=API_PASSWORD,
        )
        yield Deployment(cluster, url, log, auth_before, roles_before, env)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


# --- The install, as Supabase's postgres ----------------------------------------------------------


async def test_the_readme_installs_as_a_non_superuser_and_serves_as_its_own_login(
    deployed: Deployment,
) -> None:
    cluster = deployed.cluster
    assert not await fetch(
        cluster, "supabase_admin", "select rolsuper from pg_roles where rolname = 'postgres'"
    )
    assert (
        await fetch(cluster, "supabase_admin", "select public.schema_version()") == SCHEMA_VERSION
    )
    logins = await fetch(
        cluster,
        "supabase_admin",
        """select array_agg(distinct usename::text) from pg_stat_activity
           where datname = 'postgres' and application_name <> 'psql' and usename is not null
             and usename not in ('supabase_admin')""",
    )
    assert logins == ["motomind_api"], logins
    role = await fetch(
        cluster,
        "supabase_admin",
        """select row(rolsuper, rolinherit, rolcanlogin, rolbypassrls, rolcreaterole)::text
           from pg_roles where rolname = 'motomind_api'""",
    )
    assert role == "(f,f,t,f,f)"
    owned = await fetch(
        cluster,
        "supabase_admin",
        """select (select count(*) from pg_class where relowner = r.oid)
                + (select count(*) from pg_proc where proowner = r.oid)
           from pg_roles r where r.rolname = 'motomind_api'""",
    )
    assert owned == 0


async def test_db_init_again_changes_nothing(deployed: Deployment) -> None:
    cluster = deployed.cluster
    before = await fetch(cluster, "supabase_admin", CATALOG, OURS)
    roles = await fetch(cluster, "supabase_admin", ROLES, list(RESERVED), "motomind_api")
    again = db_init(deployed.env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"schema version {SCHEMA_VERSION} installed"), again.stdout
    assert "migrations: none pending" in again.stdout
    assert await fetch(cluster, "supabase_admin", CATALOG, OURS) == before
    assert await fetch(cluster, "supabase_admin", ROLES, list(RESERVED), "motomind_api") == roles


async def test_auth_and_the_reserved_roles_are_untouched(deployed: Deployment) -> None:
    cluster = deployed.cluster
    before = set(deployed.auth_before.splitlines())
    after = set((await fetch(cluster, "supabase_admin", CATALOG, ["auth"])).splitlines())
    assert before <= after
    # Only our triggers on auth.users were added: sign-up, email sync, placement.
    assert sorted(line.split()[1] for line in after - before) == [
        "auth.users.motomind_on_auth_user_created",
        "auth.users.motomind_on_auth_user_email",
        "auth.users.motomind_on_auth_user_placed",
    ]
    assert (
        await fetch(cluster, "supabase_admin", ROLES, list(RESERVED), "motomind_api")
        == deployed.roles_before
    )
    # The environment is faithful: the reserved login is not postgres's to change.
    conn = await asyncpg.connect(cluster.url("postgres", POSTGRES_PASSWORD))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("alter role authenticator password 'mine-now'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("create table auth.mine (id int)")
    finally:
        await conn.close()


# --- Supabase Auth's users and tokens ----------------------------------------------------------


async def gotrue_sign_up(cluster: SupabaseCluster, email: str) -> uuid.UUID:
    """What Supabase Auth does on sign-up, as its own database role."""
    user_id = uuid.uuid4()
    conn = await asyncpg.connect(cluster.local_url("supabase_auth_admin"))
    try:
        async with conn.transaction():
            await conn.execute(
                """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                     email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at,
                     updated_at, is_sso_user, is_anonymous)
                   values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated',
                     'authenticated', $2, '$2a$10$abcdefghijklmnopqrstuv', now(),
                     '{"provider": "email", "providers": ["email"]}',
                     '{"full_name": "Robert'');drop table x;--", "tenant_id": "nope"}',
                     now(), now(), false, false)""",
                user_id,
                email,
            )
            await conn.execute(
                """insert into auth.identities (provider_id, user_id, identity_data, provider,
                     created_at, updated_at)
                   values ($1, $2, jsonb_build_object('sub', $1::text, 'email', $3::text),
                           'email', now(), now())""",
                str(user_id),
                user_id,
                email,
            )
    finally:
        await conn.close()
    return user_id


async def gotrue_set_app_metadata(cluster: SupabaseCluster, user_id: uuid.UUID, meta: str) -> None:
    """The admin API's updateUserById(id, {app_metadata}): a later UPDATE of the row."""
    conn = await asyncpg.connect(cluster.local_url("supabase_auth_admin"))
    try:
        await conn.execute(
            """update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}')
                 || $2::jsonb, updated_at = now() where id = $1""",
            user_id,
            meta,
        )
    finally:
        await conn.close()


def gotrue_token(user_id: uuid.UUID, email: str, app_metadata: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "iss": ISSUER,
        "sub": str(user_id),
        "email": email,
        "phone": "",
        "app_metadata": app_metadata,
        "user_metadata": {"email_verified": True, "full_name": "Robert'); drop table x;--"},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    return str(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


def service_role_key() -> str:
    """A Supabase project's service_role key: no aud, no sub, iss "supabase"."""
    now = int(time.time())
    claims = {"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 3600}
    return str(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_supabase_auth_user_uses_the_api(deployed: Deployment) -> None:
    email = f"gotrue-{uuid.uuid4().hex[:8]}@example.com"
    user_id = await gotrue_sign_up(deployed.cluster, email)
    token = gotrue_token(user_id, email, {"provider": "email", "providers": ["email"]})
    async with httpx.AsyncClient(base_url=deployed.url, timeout=10) as client:
        me = await client.get("/v1/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        created = await client.post(
            "/v1/vehicles", headers=bearer(token), json={"make": "Subaru", "model": "Outback"}
        )
        assert created.status_code == 201, created.text
        event = await client.post(
            "/v1/timeline",
            headers=bearer(token),
            json={"vehicle_id": created.json()["id"], "type": "odometer", "miles": 1200},
        )
        assert event.status_code == 201, event.text
        listed = await client.get("/v1/vehicles", headers=bearer(token))
        assert [v["id"] for v in listed.json()["items"]] == [created.json()["id"]]


async def test_the_service_role_key_works_on_ops_only(deployed: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployed.url, timeout=10) as client:
        ops = await client.get("/v1/ops/health", headers=bearer(service_role_key()))
        assert ops.status_code == 200, ops.text
        for path in ("/v1/me", "/v1/vehicles"):
            denied = await client.get(path, headers=bearer(service_role_key()))
            assert denied.status_code == 403, denied.text


async def test_the_admin_api_places_a_user_in_a_tenant(deployed: Deployment) -> None:
    cluster = deployed.cluster
    owner_email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    owner = await gotrue_sign_up(cluster, owner_email)
    tenant = await fetch(
        cluster, "supabase_admin", "select tenant_id from public.profiles where id = $1", owner
    )
    email = f"invited-{uuid.uuid4().hex[:8]}@example.com"
    invited = await gotrue_sign_up(cluster, email)
    own_tenant = await fetch(
        cluster, "supabase_admin", "select tenant_id from public.profiles where id = $1", invited
    )
    assert own_tenant != tenant
    await gotrue_set_app_metadata(cluster, invited, f'{{"tenant_id": "{tenant}"}}')
    token = gotrue_token(
        invited, email, {"provider": "email", "providers": ["email"], "tenant_id": str(tenant)}
    )
    async with httpx.AsyncClient(base_url=deployed.url, timeout=10) as client:
        resp = await client.get("/v1/tenant", headers=bearer(token))
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == str(tenant)
        # Without the claim (an older token), the profile decides: the same tenant.
        stale = gotrue_token(invited, email, {"provider": "email", "providers": ["email"]})
        assert (await client.get("/v1/tenant", headers=bearer(stale))).json()["id"] == str(tenant)
    # A tenant that does not exist is refused; the user stays where they were.
    with pytest.raises(asyncpg.PostgresError, match="tenant_not_found"):
        await gotrue_set_app_metadata(cluster, invited, f'{{"tenant_id": "{uuid.uuid4()}"}}')
    assert (
        await fetch(
            cluster,
            "supabase_admin",
            "select tenant_id from public.profiles where id = $1",
            invited,
        )
        == tenant
    )
