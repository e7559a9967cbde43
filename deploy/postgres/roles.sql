-- The two roles Chorus uses on PostgreSQL (docs/postgresql.md), for the database this script
-- runs in, as a superuser, once:
--
--   owner  owns the schema and every table (migrations connect as it: storage.migrate_url);
--   app    what Chorus runs as (storage.database_url): owns nothing, may only read and
--          write rows, so row-level security holds it to the current workspace's rows.
--
-- Neither is a superuser nor has BYPASSRLS (either would bypass row-level security). psql
-- variables name them and give their passwords:
--
--   psql -v owner=chorus_owner -v owner_password=… -v app=chorus_app -v app_password=… \
--        -d chorus -f roles.sql
--
-- compose.yaml runs it when its PostgreSQL volume is first initialised
-- (deploy/postgres/init-roles.sh); tests/test_containers.py runs it against a real server.

\set ON_ERROR_STOP on

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password'
    NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE :"app" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;

-- The database and its schema are the owner's; nobody else may create anything in it.
ALTER DATABASE :"DBNAME" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO :"app";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";

-- Rows of every table the owner creates, now and in later migrations; nothing more.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
-- Tables that exist already (the script run again on a database Chorus migrated).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
