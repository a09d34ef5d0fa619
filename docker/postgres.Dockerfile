# PostgreSQL 15 with pg_cron preloaded, for docker-compose.yml (the official Debian-based image,
# which carries the PostgreSQL apt repository, so the extension matches the server).
FROM postgres:15

RUN apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}-cron" \
 && rm -rf /var/lib/apt/lists/*

# pg_cron must be preloaded; its jobs live in the application database (`motomind db init` creates
# the extension there and schedules the maintenance jobs). Override cron.database_name with
# `command:` when POSTGRES_DB is not motomind.
CMD ["postgres", "-c", "shared_preload_libraries=pg_cron", "-c", "cron.database_name=motomind"]
