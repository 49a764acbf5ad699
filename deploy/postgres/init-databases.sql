-- One database per service, and the platform (credentials) database.
CREATE DATABASE washfin_members;
CREATE DATABASE washfin_loans;
CREATE DATABASE washfin_sanitation;
CREATE DATABASE washfin_reporting;
CREATE DATABASE washfin_platform;

-- The request roles of row-level security (shared/rls.py, docs/operations.md): requests run as these,
-- never as the owner of the tables. Each service login must be granted both (a superuser needs nothing).
-- A login that may create roles makes them at its first migration; made here, none needs that right.
CREATE ROLE washfin_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
CREATE ROLE washfin_reader NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
