-- One database per service, and the platform (credentials) database.
CREATE DATABASE washfin_members;
CREATE DATABASE washfin_loans;
CREATE DATABASE washfin_sanitation;
CREATE DATABASE washfin_reporting;
CREATE DATABASE washfin_platform;

-- The request roles of row-level security (shared/rls.py, docs/operations.md): what the policies name.
-- Nobody logs in as them: each service's requests log in as a login of its own that holds the role's
-- privileges (washfin_<service>_app; reporting's reads washfin_reporting_reader). Each service login must
-- be granted both roles (a superuser needs nothing); a superuser service login (compose's) makes its
-- request logins, with its own password, at start.
CREATE ROLE washfin_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
CREATE ROLE washfin_reader NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;

-- Only the service's own logins may connect to its database (CONNECT is PUBLIC's by default): a service's
-- request login cannot reach another service's database. The owner (or a superuser) always may; each
-- service grants its own request logins CONNECT on its database at start.
REVOKE CONNECT ON DATABASE washfin_members FROM PUBLIC;
REVOKE CONNECT ON DATABASE washfin_loans FROM PUBLIC;
REVOKE CONNECT ON DATABASE washfin_sanitation FROM PUBLIC;
REVOKE CONNECT ON DATABASE washfin_reporting FROM PUBLIC;
REVOKE CONNECT ON DATABASE washfin_platform FROM PUBLIC;
