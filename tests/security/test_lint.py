"""Lint: the rules that keep isolation systematic, checked on the catalog and on the source.

- Every table in `public` has RLS enabled and forced and is a row of the RLS matrix (a new table
  fails here until someone writes its expected outcomes).
- Every function in `public`, `private` and `auth` (on plain PostgreSQL the auth-compat functions
  are ours) pins `search_path = pg_catalog, pg_temp`: with `''` the session's temporary schema is
  still searched first for types and tables, so a caller's temp type could hijack a cast inside a
  security-definer function (tests/security/test_temp_hijack.py performs that attack).
- A view in `public` that clients can read runs with its owner's rights, so RLS does not filter it:
  each is either `security_invoker` or listed below with the reason it is safe.
- python-jose is imported only by app/core/auth/, and every `jwt.decode` there passes a one-element
  `algorithms=[...]` list (an AST check, itself tested on bad snippets).
"""

import ast
from pathlib import Path

import asyncpg
import pytest

from tests.security.rls_matrix import TABLES

APP = Path(__file__).resolve().parents[2] / "app"
# Definer-rights views clients may read, and why each one is safe.
DEFINER_VIEWS_READABLE_BY_CLIENTS = {
    "timeline_feed": "filters on (select public.current_tenant_id()); security_barrier",
    "timeline_feed_freshness": "one timestamp, no tenant data",
}
# The ops views: service_role only.
SERVICE_ONLY_VIEWS = {"db_health_stats", "partition_coverage", "mv_freshness"}


async def test_every_public_table_is_forced_rls_and_in_the_matrix(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relispartition
           from pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')"""
    )
    assert rows
    for row in rows:
        assert row["relrowsecurity"] and row["relforcerowsecurity"], row["relname"]
    tables = {r["relname"] for r in rows if not r["relispartition"]}
    assert tables == set(TABLES), "add the new table to tests/security/rls_matrix.py"


async def test_every_function_searches_pg_temp_last(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select n.nspname || '.' || p.oid::regprocedure::text as name, p.proconfig
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('public', 'private', 'auth')
             and not exists (select 1 from pg_depend d
                             where d.objid = p.oid and d.deptype = 'e')"""
    )
    assert len(rows) > 10
    loose = [
        r["name"] for r in rows if "search_path=pg_catalog, pg_temp" not in (r["proconfig"] or [])
    ]
    assert loose == []


async def test_views_clients_can_read_are_filtered(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select c.relname,
                  coalesce(c.reloptions @> array['security_invoker=true'], false) as invoker,
                  has_table_privilege('authenticated', c.oid, 'select') as authenticated,
                  has_table_privilege('anon', c.oid, 'select') as anon,
                  has_table_privilege('service_role', c.oid, 'select') as service
           from pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')"""
    )
    assert rows
    for row in rows:
        name = row["relname"]
        assert not row["anon"], name
        if row["invoker"]:
            continue
        if name in SERVICE_ONLY_VIEWS:
            assert row["service"] and not row["authenticated"], name
            continue
        assert name in DEFINER_VIEWS_READABLE_BY_CLIENTS, (
            f"public.{name} runs with its owner's rights (RLS does not apply): make it "
            "security_invoker, or justify it in DEFINER_VIEWS_READABLE_BY_CLIENTS"
        )


# --- python-jose ----------------------------------------------------------------------------------


def jose_violations(path: str, source: str) -> list[str]:
    """Imports of jose outside app/core/auth/; jwt.decode calls without a one-element list."""
    tree = ast.parse(source)
    found: list[str] = []
    in_auth = "app/core/auth/" in path.replace("\\", "/")
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        if any(m == "jose" or m.startswith("jose.") for m in modules) and not in_auth:
            found.append(f"{path}:{node.lineno}: imports python-jose outside app/core/auth/")
        if isinstance(node, ast.Call) and _is_decode(node.func):
            kwargs = {k.arg: k.value for k in node.keywords}
            algorithms = kwargs.get("algorithms")
            if not (isinstance(algorithms, ast.List) and len(algorithms.elts) == 1):
                found.append(f"{path}:{node.lineno}: decode without algorithms=[one algorithm]")
            elif isinstance(algorithms.elts[0], ast.Constant) and str(
                algorithms.elts[0].value
            ).lower() in ("none", ""):
                found.append(f"{path}:{node.lineno}: decode allows alg none")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "verify_signature"
                    and not (isinstance(value, ast.Constant) and value.value is True)
                ):
                    found.append(f"{path}:{node.lineno}: verify_signature is not True")
    return found


def _is_decode(func: ast.expr) -> bool:
    # jwt.decode / jws.verify / jwe.decrypt, and a bare decode imported from jose.
    if isinstance(func, ast.Attribute):
        base = func.value
        return (
            isinstance(base, ast.Name)
            and base.id in ("jwt", "jws", "jwe")
            and func.attr in ("decode", "verify", "decrypt")
        )
    return False


def test_python_jose_is_wrapped_once_with_pinned_algorithms() -> None:
    files = sorted(APP.rglob("*.py"))
    assert any(f.name == "verify.py" for f in files)
    violations = [v for f in files for v in jose_violations(str(f), f.read_text())]
    assert violations == []
    # Not vacuous: the verifier really decodes through python-jose.
    auth_source = (APP / "core" / "auth" / "verify.py").read_text()
    assert "jwt.decode(" in auth_source


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("app/vehicles/router.py", "from jose import jwt\n"),
        ("app/me/router.py", "import jose.jwt\n"),
        ("app/core/auth/verify.py", "from jose import jwt\njwt.decode(t, k, audience='a')\n"),
        (
            "app/core/auth/verify.py",
            "from jose import jwt\njwt.decode(t, k, algorithms=['HS256', 'RS256'])\n",
        ),
        ("app/core/auth/verify.py", "from jose import jwt\njwt.decode(t, k, algorithms=ALGS)\n"),
        (
            "app/core/auth/verify.py",
            "from jose import jwt\njwt.decode(t, k, algorithms=['none'])\n",
        ),
        ("app/core/auth/verify.py", "opts = {'verify_signature': False}\n"),
    ],
)
def test_the_jose_lint_catches(path: str, source: str) -> None:
    assert jose_violations(path, source) != []


def test_the_jose_lint_allows_the_pinned_form() -> None:
    source = (
        "from jose import jwt\n"
        "jwt.decode(t, key, algorithms=[key.algorithm], options={'verify_signature': True})\n"
    )
    assert jose_violations("app/core/auth/verify.py", source) == []
