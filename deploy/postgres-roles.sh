#!/bin/sh
# First start of the compose Postgres: the two roles of README "Tenancy and row-level security".
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" -v owner_password="$COHERENCE_OWNER_PASSWORD" \
    -v app_password="$COHERENCE_APP_PASSWORD" <<'SQL'
CREATE ROLE coherence_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE coherence_app LOGIN PASSWORD :'app_password';
ALTER DATABASE :"db" OWNER TO coherence_owner;
ALTER SCHEMA public OWNER TO coherence_owner;
SQL
