-- Audit content version 2: the holder, the handover, a replay and a reviewed entry are
-- typed fields of an entry, and the report and the audit views query them (and the rule,
-- the user's role, the care-team roles and the review flag) as columns instead of reading
-- the JSON content with string conventions.
--
-- The columns are copies of the hashed content, like the first ones; verify checks that
-- they agree. Entries written before (content version 1) carried these facts as
-- conventions: the holder as an object "Organization/ura-<URA>", the handover as an object
-- "Handover/<id>", a replay as a reason starting "received again", a reviewed entry as an
-- object "AuditEvent/<id>" of a review. Their columns are filled here from those
-- conventions, once, exactly as the service reads version 1 content. The append-only guard
-- is lifted for this statement only, inside this migration's transaction.

ALTER TABLE audit_entries ADD COLUMN rule TEXT;
ALTER TABLE audit_entries ADD COLUMN user_role TEXT;
ALTER TABLE audit_entries ADD COLUMN team_roles TEXT;
ALTER TABLE audit_entries ADD COLUMN holder_ura TEXT;
ALTER TABLE audit_entries ADD COLUMN handover_id TEXT;
ALTER TABLE audit_entries ADD COLUMN replay BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_entries ADD COLUMN reviewed_id TEXT;
ALTER TABLE audit_entries ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0;

DROP TRIGGER audit_entries_no_update;

UPDATE audit_entries SET
    rule = json_extract(content, '$.entry.rule'),
    user_role = json_extract(content, '$.entry.user.uzi_role'),
    team_roles = (SELECT ' ' || group_concat(value, ' ') || ' '
                  FROM (SELECT value FROM json_each(audit_entries.content, '$.entry.team_roles') ORDER BY key)),
    holder_ura = (SELECT substr(value, 18) FROM json_each(audit_entries.content, '$.entry.objects')
                  WHERE substr(value, 1, 17) = 'Organization/ura-' ORDER BY key LIMIT 1),
    handover_id = (SELECT substr(value, 10) FROM json_each(audit_entries.content, '$.entry.objects')
                   WHERE substr(value, 1, 9) = 'Handover/' ORDER BY key LIMIT 1),
    replay = CASE WHEN action = 'handover-received'
                   AND substr(json_extract(content, '$.entry.reason'), 1, 14) = 'received again' THEN 1 ELSE 0 END,
    reviewed_id = CASE WHEN action = 'review' THEN
                  (SELECT substr(value, 12) FROM json_each(audit_entries.content, '$.entry.objects')
                   WHERE substr(value, 1, 11) = 'AuditEvent/' ORDER BY key LIMIT 1) END,
    flagged = CASE WHEN json_extract(content, '$.entry.flag_for_review') = 1 THEN 1 ELSE 0 END
WHERE json_valid(content);

CREATE TRIGGER audit_entries_no_update
BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

-- The reviews of an entry, and the flagged entries (both few).
CREATE INDEX audit_entries_reviewed ON audit_entries (reviewed_id) WHERE reviewed_id IS NOT NULL;
CREATE INDEX audit_entries_flagged ON audit_entries (seq) WHERE flagged = 1;
