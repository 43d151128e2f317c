-- compose.yaml: one database per agency, made at the PostgreSQL server's first start
-- (docker-entrypoint-initdb.d). Each service then creates its own schema and tables in it.
CREATE DATABASE scfed_sib;
CREATE DATABASE scfed_cjis_iafis;
CREATE DATABASE scfed_ident;
CREATE DATABASE scfed_lesc;
CREATE DATABASE scfed_ice_field;
