"""POST /ContactGroups/{ContactGroupID}: rename a group, or delete it with Status DELETED.

Source: xero_accounting.yaml (../shared/reference/xero-openapi), path /ContactGroups/{ContactGroupID} post
(updateContactGroup, body ContactGroups, scope accounting.contacts) and components/schemas/ContactGroup.Status
("To delete a contact group update the status to DELETED. Only contact groups with a status of ACTIVE are
returned on GETs"); LEDGER-API-FACTS.md "POST /ContactGroups/{id} renames a group or deletes it".
"""

from __future__ import annotations


def make_group(conn, name: str) -> str:
    made = conn.send("PUT", "ContactGroups", json={"ContactGroups": [{"Name": name}]})
    assert made.status_code == 200, made.text
    return made.json()["ContactGroups"][0]["ContactGroupID"]


def test_rename_shows_on_the_group_and_on_its_members(fixed):
    group = make_group(fixed, "Credit Hold")
    contact = next(iter(fixed.sandbox.book.contacts.by_id))
    fixed.send("PUT", f"ContactGroups/{group}/Contacts", json={"Contacts": [{"ContactID": contact}]})
    answer = fixed.send("POST", f"ContactGroups/{group}", json={"ContactGroups": [{"Name": "On Stop"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["ContactGroups"][0]["Name"] == "On Stop"
    assert fixed.get(f"ContactGroups/{group}").json()["ContactGroups"][0]["Name"] == "On Stop"
    refs = fixed.get(f"Contacts/{contact}").json()["Contacts"][0]["ContactGroups"]
    assert "On Stop" in {g["Name"] for g in refs}


def test_delete_by_status_hides_the_group_everywhere(fixed):
    group = make_group(fixed, "Temporary")
    contact = next(iter(fixed.sandbox.book.contacts.by_id))
    fixed.send("PUT", f"ContactGroups/{group}/Contacts", json={"Contacts": [{"ContactID": contact}]})
    gone = fixed.send("POST", f"ContactGroups/{group}", json={"ContactGroups": [{"Status": "DELETED"}]})
    assert gone.status_code == 200 and gone.json()["ContactGroups"][0]["Status"] == "DELETED"
    assert fixed.get(f"ContactGroups/{group}").status_code == 404
    listed = fixed.get("ContactGroups").json()["ContactGroups"]
    assert group not in {g["ContactGroupID"] for g in listed}
    refs = fixed.get(f"Contacts/{contact}").json()["Contacts"][0]["ContactGroups"]
    assert group not in {g["ContactGroupID"] for g in refs}


def test_bad_updates_are_refused(fixed):
    group = make_group(fixed, "Alpha")
    make_group(fixed, "Beta")
    taken = fixed.send("POST", f"ContactGroups/{group}", json={"ContactGroups": [{"Name": "beta"}]})
    assert taken.status_code == 400 and "already in use" in taken.text
    odd = fixed.send("POST", f"ContactGroups/{group}", json={"ContactGroups": [{"Status": "ARCHIVED"}]})
    assert odd.status_code == 400 and "ACTIVE or DELETED" in odd.text
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        fixed.send("POST", f"ContactGroups/{missing}", json={"ContactGroups": [{"Name": "x"}]}).status_code
        == 404
    )
