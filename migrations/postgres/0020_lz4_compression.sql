-- PostgreSQL only (SQLite does not compress): the large texts a handover writes (the stored
-- Bundle, its summary, the facade's resources, teams and consents) are compressed with lz4
-- instead of the default pglz. Under handover load pglz_compress was about a fifth of
-- PostgreSQL's CPU (perf, 250 handovers/s). Values stored before keep their compression
-- (both are read alike). A server older than 14, or built without lz4, keeps pglz.
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE NOTICE 'PostgreSQL before 14 has no per-column compression; large values stay with pglz';
        RETURN;
    END IF;
    EXECUTE 'ALTER TABLE handovers ALTER COLUMN output_bundle SET COMPRESSION lz4, '
         || 'ALTER COLUMN summary SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE facade_resources ALTER COLUMN resource SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE care_teams ALTER COLUMN resource SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE patient_consents ALTER COLUMN resource SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server was built without lz4; large values stay with pglz';
END
$$;
