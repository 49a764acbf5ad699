-- One database per service, and the platform (credentials) database.
CREATE DATABASE washfin_members;
CREATE DATABASE washfin_loans;
CREATE DATABASE washfin_sanitation;
CREATE DATABASE washfin_reporting;
CREATE DATABASE washfin_platform;

-- The request roles of row-level security (shared/rls.py, docs/operations.md): requests run on these
-- logins, never as the owner of the tables. Each service login must be granted both (a superuser needs
-- nothing); a superuser service login (compose's) gives them its own password at start.
CREATE ROLE washfin_app LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
CREATE ROLE washfin_reader LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
