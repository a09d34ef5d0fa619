"""The API's login role (contract §6): made by `db init` as Supabase's non-superuser `postgres`
can, LOGIN NOINHERIT, owning nothing, a member of exactly the roles it switches to."""

import base64
import hashlib
import hmac
import re
import secrets

import asyncpg

DEFAULT_API_ROLE = "motomind_api"
API_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
RESERVED_ROLES = frozenset(
    {"postgres", "anon", "authenticated", "service_role", "authenticator", "public"}
)


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677): setting it
    instead of the password keeps the plain text out of pg_stat_activity and the server log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


async def ensure_api_role(conn: asyncpg.Connection, name: str, password: str | None) -> None:
    """The API's login: LOGIN NOINHERIT, owning nothing, a member of exactly the roles it switches
    to. Done as Supabase's `postgres` can (CREATEROLE, not a superuser); roles are cluster-wide,
    so a second installer racing this one is fine."""
    if (
        not API_ROLE_NAME.fullmatch(name)
        or name in RESERVED_ROLES
        or name.startswith(("pg_", "supabase"))
    ):
        raise ValueError(f"{name!r} cannot be the API's login role")
    existing = await conn.fetchrow(
        """select r.rolsuper or r.rolbypassrls or r.rolcreaterole or r.rolcreatedb
                    or r.rolreplication as privileged,
                  r.rolname = current_user or r.rolname = session_user as installer,
                  exists (select 1 from pg_catalog.pg_shdepend d
                          where d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
                            and d.refobjid = r.oid and d.deptype = 'o') as owns,
                  array(select m.roleid::regrole::text from pg_catalog.pg_auth_members m
                        where m.member = r.oid
                          and m.roleid::regrole::text not in ('anon', 'authenticated',
                                                              'service_role')) as member_of
           from pg_catalog.pg_roles r where r.rolname = $1""",
        name,
    )
    if existing is None:
        try:
            async with conn.transaction():  # a savepoint: another installer may win the race
                await conn.execute(f"create role {name} login noinherit")
        except asyncpg.DuplicateObjectError:
            pass
    else:
        # An existing role is taken only if it is already what `create role` would make: the
        # API's login must not be able to become anything more than a client (RLS is its fence).
        problems = [
            what
            for what, found in (
                (
                    "is privileged (superuser, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION)",
                    existing["privileged"],
                ),
                ("is the role installing the schema", existing["installer"]),
                ("owns objects", existing["owns"]),
                (f"is a member of {', '.join(existing['member_of'])}", existing["member_of"]),
            )
            if found
        ]
        if problems:
            raise ValueError(
                f"role {name} cannot be the API's login: it {'; it '.join(problems)}. "
                "Choose another MOTOMIND_API_ROLE; db init creates it."
            )
        await conn.execute(f"alter role {name} login noinherit")
    for member_of in ("anon", "authenticated", "service_role"):
        if not await conn.fetchval("select pg_has_role($1, $2, 'MEMBER')", name, member_of):
            await conn.execute(f"grant {member_of} to {name}")
    await conn.execute(f"grant execute on function public.cursor_signing_key() to {name}")
    if password is not None:
        # PostgreSQL's clients SASLprep a password before hashing it; for printable ASCII that is
        # the identity, so the verifier computed here is the one they will prove.
        if not (password.isascii() and password.isprintable()) or not password:
            raise ValueError("MOTOMIND_API_PASSWORD must be printable ASCII (it goes into URLs)")
        verifier = scram_verifier(password).replace("'", "''")
        await conn.execute(f"alter role {name} password '{verifier}'")
