-- PostgreSQL version of migrations/sqlite/0021_facade_key_by_resource.sql: the facade's
-- primary key starts with the resource (type, id), so it also serves the lookup of a
-- resource id across holders and patients, and the index `facade_resources_id` goes (one
-- index fewer with a random key per new resource). The key's columns, and so what is
-- unique, are unchanged. PostgreSQL changes the key in place.
ALTER TABLE facade_resources DROP CONSTRAINT facade_resources_pkey;
ALTER TABLE facade_resources ADD PRIMARY KEY (resource_type, resource_id, holder_ura, patient_bsn);
DROP INDEX facade_resources_id;
