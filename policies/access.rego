# overdracht access policy: who in a GZSP care team may read which data categories.
#
# Read by the FHIR read facade for every request (evaluated in-process by regorus; the Rust
# side is src/policy/access.rs). A provider may adapt this file and the data in
# access-config.json; `overdracht` loads a directory holding both instead of the embedded copy.
#
# The decision is `data.overdracht.access.decision`:
#   {"permit": bool, "rule": "<id>", "reason": "<text>", "categories": [...],
#    "break_glass": bool, "flag_for_review": bool}
# Deny by default: only the two `permit_*` rules below ever permit.
#
# Input (built by PolicyEngine from the token, the teams, agreements and consents):
#   now                 the Europe/Amsterdam calendar day, as a day number (days since 0001-01-01)
#   requester           {uzi, uzi_role, ura, purpose_of_use, break_glass_reason ("" = none)}
#   requested_all       true when every category is asked for, else `requested` lists them
#   memberships         the requester's memberships (by UZI) in the patient's teams:
#                       {team, role, uzi_role, ura, start, end|null, team_ura, team_ended|null}
#   teams               the patient's teams: {id, ura, ended|null}
#   agreements          {id, receivers: [URA...], categories, start, end|null, needs_consent}
#   agreement_consents  the patient's explicit consents in force: {agreement, start, end|null}
#   objections          the patient's objections: {id, members: [UZI...], categories|null (= all), start, end|null}
# Days are inclusive at both ends; null ends are open.

package overdracht.access

import rego.v1

cfg := data.overdracht.config

now := input.now

all_categories := data.overdracht.categories

# ------------------------------------------------------------------ helpers

in_window(start, end) if {
	start <= now
	end == null
}

in_window(start, end) if {
	start <= now
	end != null
	now <= end
}

member_on(m, day) if {
	m.start <= day
	m.end == null
}

member_on(m, day) if {
	m.start <= day
	m.end != null
	day <= m.end
}

wanted(c) if input.requested_all

wanted(c) if c in input.requested

matrix_allows(role, c) if c in cfg.matrix[role].only

matrix_allows(role, c) if {
	excluded := cfg.matrix[role].all_except
	not c in excluded
}

# ------------------------------------------------------------------ purpose

purpose_ok if input.requester.purpose_of_use in cfg.purposes_of_use

# ------------------------------------------------------------------ membership

# Memberships in which the requester acts for the organisation named in the token, with the
# profession (UZI role) the token states: the team's role code is a claim until the member acts.
own_memberships contains m if {
	some m in input.memberships
	m.ura == input.requester.ura
	m.uzi_role == input.requester.uzi_role
}

role_mismatch if {
	some m in input.memberships
	m.ura == input.requester.ura
	m.uzi_role != input.requester.uzi_role
}

treatment_running(m) if m.team_ended == null

treatment_running(m) if {
	m.team_ended != null
	now <= m.team_ended
}

current_memberships contains m if {
	some m in own_memberships
	treatment_running(m)
	member_on(m, now)
}

# The closing-letter grace period: after the treatment ended, the roles in
# grace_period_roles keep access for grace_period_days if they were members on the last day.
current_memberships contains m if {
	some m in own_memberships
	m.team_ended != null
	m.team_ended < now
	now <= m.team_ended + cfg.grace_period_days
	m.role in cfg.grace_period_roles
	member_on(m, m.team_ended)
}

# ------------------------------------------------------------------ agreements

agreement_in_force(a) if {
	in_window(a.start, a.end)
	not a.needs_consent
}

agreement_in_force(a) if {
	in_window(a.start, a.end)
	a.needs_consent
	some k in input.agreement_consents
	k.agreement == a.id
	in_window(k.start, k.end)
}

# The categories agreements in force brought to the provider with this URA.
agreed(ura) := {c |
	some a in input.agreements
	ura in a.receivers
	agreement_in_force(a)
	some c in a.categories
}

# ------------------------------------------------------------------ consent

objection_applies(o) if {
	in_window(o.start, o.end)
	count(o.members) == 0
}

objection_applies(o) if {
	in_window(o.start, o.end)
	input.requester.uzi in o.members
}

objected contains c if {
	some o in input.objections
	objection_applies(o)
	o.categories == null
	some c in all_categories
}

objected contains c if {
	some o in input.objections
	objection_applies(o)
	o.categories != null
	some c in o.categories
}

# The patient objects to this person seeing anything.
member_objection if {
	some o in input.objections
	in_window(o.start, o.end)
	input.requester.uzi in o.members
	o.categories == null
}

# ------------------------------------------------------------------ member access

member_agreed contains c if {
	some m in current_memberships
	some c in agreed(m.team_ura)
}

member_grants contains c if {
	some m in current_memberships
	some c in agreed(m.team_ura)
	matrix_allows(m.role, c)
}

member_unobjected := {c | some c in member_grants; not c in objected}

member_final := {c | some c in member_unobjected; wanted(c)}

# ------------------------------------------------------------------ break-the-glass

default break_glass_requested := false

break_glass_requested if input.requester.break_glass_reason != ""

bg_teams contains t if {
	some t in input.teams
	t.ura == input.requester.ura
}

# Only the professions the policy names (UZI role codes; the shipped list is the
# BIG-registered professions) may break the glass.
bg_profession if input.requester.uzi_role in cfg.break_glass.professions

break_glass_allowed if {
	cfg.break_glass.enabled
	break_glass_requested
	count(bg_teams) > 0
	bg_profession
}

bg_agreed contains c if {
	some t in bg_teams
	some c in agreed(t.ura)
}

bg_grants := {c | some c in bg_agreed; matrix_allows("break-glass", c)}

bg_unobjected := bg_grants if cfg.break_glass.overrides_objection

else := {c | some c in bg_grants; not c in objected}

bg_final := {c | some c in bg_unobjected; wanted(c)}

objection_overridden if {
	break_glass_allowed
	cfg.break_glass.overrides_objection
}

# ------------------------------------------------------------------ the decision

deny(rule, reason) := {
	"permit": false,
	"rule": rule,
	"reason": reason,
	"categories": [],
	"break_glass": false,
	"flag_for_review": break_glass_requested,
}

default decision := {
	"permit": false,
	"rule": "default.deny",
	"reason": "no rule permits this request",
	"categories": [],
	"break_glass": false,
	"flag_for_review": false,
}

decision := d if {
	not purpose_ok
	d := deny("purpose.not-permitted", sprintf("purpose of use '%s' is not one of %v", [input.requester.purpose_of_use, cfg.purposes_of_use]))
} else := d if {
	member_objection
	not objection_overridden
	d := deny("consent.member-objection", "the patient objects to this person seeing their data")
} else := d if {
	count(member_final) > 0
	roles := sort({m.role | some m in current_memberships})
	d := {
		"permit": true,
		"rule": "access.member",
		"reason": sprintf("member of the care team as %s", [concat(" and ", roles)]),
		"roles": roles,
		"categories": sort(member_final),
		"break_glass": false,
		"flag_for_review": false,
	}
} else := d if {
	break_glass_allowed
	count(bg_final) > 0
	d := {
		"permit": true,
		"rule": "access.break-glass",
		"reason": sprintf("break-the-glass by a member of the provider (URA %s): %s", [input.requester.ura, input.requester.break_glass_reason]),
		"categories": sort(bg_final),
		"break_glass": true,
		"flag_for_review": true,
	}
} else := d if {
	count(current_memberships) > 0
	d := shortfall("member of the care team", member_agreed, member_grants, member_unobjected)
} else := d if {
	break_glass_requested
	not cfg.break_glass.enabled
	d := deny("break-glass.disabled", "break-the-glass is not enabled at this provider")
} else := d if {
	break_glass_allowed
	d := shortfall("break-the-glass", bg_agreed, bg_grants, bg_unobjected)
} else := d if {
	break_glass_requested
	count(bg_teams) > 0
	d := deny("break-glass.profession", sprintf("break-the-glass is for the professions the policy names (break_glass.professions); UZI role %s is not one", [input.requester.uzi_role]))
} else := d if {
	break_glass_requested
	d := deny("break-glass.other-organisation", sprintf("break-the-glass is for members of the provider that manages the patient's team; URA %s does not", [input.requester.ura]))
} else := d if {
	d := not_a_member
}

# Why a member (or break-the-glass) ends up with nothing of what was asked: no agreement
# brought anything; the role may see none of it; the patient objects to all of it.
shortfall(who, agreed_set, granted, unobjected) := d if {
	count(agreed_set) == 0
	d := deny("agreement.none-in-force", sprintf("%s, but no data-transfer agreement in force brought data to this provider", [who]))
} else := d if {
	count({c | some c in granted; wanted(c)}) == 0
	d := deny("category.not-allowed", sprintf("%s, but none of the requested categories is allowed for this role (allowed: %s)", [who, concat(", ", sort(unobjected))]))
} else := d if {
	d := deny("consent.category-objection", sprintf("%s, but the patient objects to sharing the requested categories", [who]))
}

not_a_member := deny("membership.not-started", "the requester's membership of the care team has not started yet") if {
	some m in own_memberships
	now < m.start
} else := deny("treatment.ended", "the treatment has ended (and any grace period for the closing letter has passed)") if {
	some m in own_memberships
	m.team_ended != null
	m.team_ended < now
} else := deny("membership.ended", "the requester's membership of the care team has ended") if {
	count(own_memberships) > 0
} else := deny("membership.role-mismatch", "the care team records another profession (UZI role) for the requester than the token states") if {
	role_mismatch
} else := deny("membership.other-organisation", "the requester is a member of the care team for another organisation than the one in the token") if {
	count(input.memberships) > 0
} else := deny("default.not-a-member", "the requester is not a member of any of the patient's care teams")
