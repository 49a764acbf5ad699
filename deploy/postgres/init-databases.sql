-- One database per service, and the platform (credentials) database.
CREATE DATABASE washfin_members;
CREATE DATABASE washfin_loans;
CREATE DATABASE washfin_sanitation;
CREATE DATABASE washfin_reporting;
CREATE DATABASE washfin_platform;
