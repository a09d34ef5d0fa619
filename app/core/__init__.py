"""The core: settings, the database pool and the one request transaction, token verification and
identity, errors and their problem+json answers, the edge middleware, observability, retries.

Careful here: a change in app/core/ can open one tenant's data to another or let a bad token in,
so it gets a security review. The core imports no other layer of app/.
"""
