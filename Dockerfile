# MotoMind API image: `motomind serve` on 0.0.0.0:8000 as a non-root user.
#   docker build -t motomind-api .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... -e SUPABASE_JWT_SECRET=... motomind-api
# The same image runs the schema installer: docker run --rm -e DATABASE_ADMIN_URL=... motomind-api motomind db init

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: a virtualenv with the dependencies and the app (wheel install, not editable) ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so code changes don't reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# The app. sql/ travels inside the package as app/sql (app/database/migrate.py falls back to that package
# data when <site-packages>/sql does not exist), so the installed `motomind` finds the schema.
COPY app ./app
COPY sql ./app/sql
RUN echo "recursive-include app/sql *.sql" >> MANIFEST.in \
 && pip install --no-deps . \
 && cd / \
 && python -c "from app.database.migrate import sql_files; files = sql_files(); assert files, 'no schema files in the installed package'; print(len(files), 'schema files in', files[0].parent)" \
 && python -m pip uninstall -y -q pip setuptools wheel

# ---- final: the interpreter, the virtualenv, nothing to build with ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOTOMIND_ENV=production \
    LOG_FORMAT=json \
    MOTOMIND_DATA_DIR=/app/.motomind
RUN groupadd --system --gid 10001 motomind \
 && useradd --system --uid 10001 --gid motomind --home-dir /app --no-create-home --shell /usr/sbin/nologin motomind \
 && install -d -o motomind -g motomind /app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
USER motomind:motomind
EXPOSE 8000
# Liveness only (/healthz never touches the database); slim images have no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# exec form: motomind is PID 1 and gets SIGTERM itself (graceful drain).
CMD ["motomind", "serve", "--host", "0.0.0.0", "--port", "8000"]
