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

ALTER TABLE audit_entries ADD COLUMN rule TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN user_role TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN team_roles TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN holder_ura TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN handover_id TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN replay BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_entries ADD COLUMN reviewed_id TEXT COLLATE "C";
ALTER TABLE audit_entries ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0;

ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_no_update;

UPDATE audit_entries a SET
    rule = j.d #>> '{entry,rule}',
    user_role = j.d #>> '{entry,user,uzi_role}',
    team_roles = (SELECT ' ' || string_agg(t.value, ' ' ORDER BY t.ord) || ' '
                  FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(j.d #> '{entry,team_roles}') = 'array'
                       THEN j.d #> '{entry,team_roles}' ELSE '[]'::jsonb END) WITH ORDINALITY AS t(value, ord)),
    holder_ura = (SELECT substr(o.value, 18) FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(j.d #> '{entry,objects}') = 'array'
                       THEN j.d #> '{entry,objects}' ELSE '[]'::jsonb END) WITH ORDINALITY AS o(value, ord)
                  WHERE left(o.value, 17) = 'Organization/ura-' ORDER BY o.ord LIMIT 1),
    handover_id = (SELECT substr(o.value, 10) FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(j.d #> '{entry,objects}') = 'array'
                       THEN j.d #> '{entry,objects}' ELSE '[]'::jsonb END) WITH ORDINALITY AS o(value, ord)
                   WHERE left(o.value, 9) = 'Handover/' ORDER BY o.ord LIMIT 1),
    replay = CASE WHEN a.action = 'handover-received'
                   AND left(j.d #>> '{entry,reason}', 14) = 'received again' THEN 1 ELSE 0 END,
    reviewed_id = CASE WHEN a.action = 'review' THEN
                  (SELECT substr(o.value, 12) FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(j.d #> '{entry,objects}') = 'array'
                       THEN j.d #> '{entry,objects}' ELSE '[]'::jsonb END) WITH ORDINALITY AS o(value, ord)
                   WHERE left(o.value, 11) = 'AuditEvent/' ORDER BY o.ord LIMIT 1) END,
    flagged = CASE WHEN j.d #>> '{entry,flag_for_review}' = 'true' THEN 1 ELSE 0 END
FROM (SELECT seq, overdracht_jsonb(content) AS d FROM audit_entries) j
WHERE j.seq = a.seq AND j.d IS NOT NULL;

ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_no_update;

-- The reviews of an entry, and the flagged entries (both few).
CREATE INDEX audit_entries_reviewed ON audit_entries (reviewed_id) WHERE reviewed_id IS NOT NULL;
CREATE INDEX audit_entries_flagged ON audit_entries (seq) WHERE flagged = 1;
