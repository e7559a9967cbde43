#!/bin/sh
# Run by the postgres image on the first start of an empty data volume
# (/docker-entrypoint-initdb.d): creates Chorus's owner and app roles in $POSTGRES_DB with
# deploy/postgres/roles.sql. The passwords come from the environment (compose.yaml).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="${CHORUS_DB_OWNER:-chorus_owner}" \
    -v owner_password="$CHORUS_DB_OWNER_PASSWORD" \
    -v app="${CHORUS_DB_APP:-chorus_app}" \
    -v app_password="$CHORUS_DB_APP_PASSWORD" \
    -f /chorus/roles.sql
