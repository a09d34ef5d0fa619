"""The HTTP conventions every resource shares (contract §3): keyset paging and cursors, ETags,
Idempotency-Key, the request/response model bases and shared field types, the generic CRUD.
Imports app/core only; the domains import from here."""
