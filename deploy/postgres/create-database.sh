#!/usr/bin/env bash
# PostgreSQL for hpsearch workers on several machines: one database every worker reaches.
#
# Start it (on the database host, as a user allowed to run psql as postgres):
#   HPSEARCH_DB_PASSWORD='a-long-secret' bash deploy/postgres/create-database.sh
# Then every worker uses the storage URL it prints, e.g.
#   postgresql://hpsearch:a-long-secret@db-host:5432/hpsearch
# (allow the workers' network in pg_hba.conf and listen_addresses in postgresql.conf;
# every worker host needs `pip install 'hpsearch[postgres]'`).
set -euo pipefail

: "${HPSEARCH_DB_PASSWORD:?set HPSEARCH_DB_PASSWORD to the password the workers will use}"
DB_NAME="${HPSEARCH_DB_NAME:-hpsearch}"
DB_USER="${HPSEARCH_DB_USER:-hpsearch}"
DB_HOST="${HPSEARCH_DB_HOST:-$(hostname -f)}"

# idempotent: running it twice changes nothing but the password
sudo -u postgres psql -v ON_ERROR_STOP=1 \
    -v user="$DB_USER" -v password="$HPSEARCH_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" PASSWORD :'password';
SQL
if ! sudo -u postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    sudo -u postgres createdb --owner "$DB_USER" "$DB_NAME"
fi
echo "storage: postgresql://$DB_USER:<password>@$DB_HOST:5432/$DB_NAME"
