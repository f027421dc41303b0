"""Runs pyairtable, unchanged, against the Airtable emulator.

Usage: pyairtable_scenario.py URL TOKEN BASE_ID

Covers create, list with pagination and a formula, update (merge and
replace), upsert, delete, the metadata API and webhook payload reading,
with a notification receiver that checks the MAC. Any failure raises,
which exits non-zero.
"""

import http.server
import json
import sys
import threading
import time

from pyairtable import Api
from pyairtable.formulas import AND, GTE, Field, match
from pyairtable.models.webhook import WebhookNotification


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"ok - {message}")


class PingReceiver(http.server.BaseHTTPRequestHandler):
    """Collects notification pings (raw body and MAC header)."""

    pings = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("ascii")
        PingReceiver.pings.append((body, self.headers.get("X-Airtable-Content-MAC")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PingReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/ping"


def main(url, token, base_id):
    api = Api(token, endpoint_url=url)
    base = api.base(base_id)

    # Schema through the metadata API.
    base.create_table(
        "People",
        fields=[
            {"name": "Name", "type": "singleLineText"},
            {"name": "Age", "type": "number", "options": {"precision": 0}},
            {"name": "Email", "type": "email"},
            {"name": "Team", "type": "singleSelect", "options": {"choices": [{"name": "Red"}, {"name": "Blue"}]}},
            {"name": "Active", "type": "checkbox", "options": {"icon": "check", "color": "greenBright"}},
        ],
    )
    schema = base.schema(force=True)
    people_schema = schema.table("People")
    check(people_schema.id.startswith("tbl") and len(people_schema.id) == 17, "table created through the metadata API")
    check(people_schema.field("Age").type == "number", "base schema lists typed fields")

    server, ping_url = start_receiver()
    spec = {
        "options": {
            "filters": {"dataTypes": ["tableData"], "recordChangeScope": people_schema.id},
            "includes": {"includePreviousCellValues": True},
        }
    }
    created_hook = base.add_webhook(ping_url, spec)
    check(created_hook.id.startswith("ach"), "webhook created")

    table = api.table(base_id, "People")
    first = table.create({"Name": "Ada", "Age": 36, "Email": "ada@example.com", "Team": "Red", "Active": True})
    check(first["id"].startswith("rec") and len(first["id"]) == 17, "single create answers a record id")
    rows = [{"Name": f"Person {i:02d}", "Age": i, "Team": "Blue"} for i in range(25)]
    created = table.batch_create(rows)
    check(len(created) == 25, "batch create of 25 records in chunks of 10")

    pages = list(table.iterate(page_size=10))
    check([len(p) for p in pages] == [10, 10, 6], "list pages through 26 records 10 at a time")
    everyone = table.all()
    check(len(everyone) == 26, "all() returns every record")
    check(len({r["id"] for r in everyone}) == 26, "no record is listed twice")

    adults = table.all(formula=AND(GTE(Field("Age"), 18), match({"Team": "Blue"})), sort=["-Age"])
    check([r["fields"]["Age"] for r in adults] == list(range(24, 17, -1)), "formula filter with sort")
    quoted = table.first(formula=match({"Name": "Ada"}))
    check(quoted is not None and quoted["id"] == first["id"], "first() with a match formula")
    check(table.all(formula="{Active}", fields=["Name"]) == [{"id": first["id"], "createdTime": first["createdTime"], "fields": {"Name": "Ada"}}], "fields projection and checkbox formula")
    limited = table.all(max_records=15, page_size=10)
    check(len(limited) == 15, "max_records truncates")

    updated = table.update(first["id"], {"Age": 37})
    check(updated["fields"]["Age"] == 37 and updated["fields"]["Name"] == "Ada", "update merges fields")
    replaced = table.update(first["id"], {"Name": "Ada Lovelace"}, replace=True)
    check(replaced["fields"] == {"Name": "Ada Lovelace"}, "replace clears unlisted fields")
    batch = table.batch_update([{"id": r["id"], "fields": {"Age": 99}} for r in created[:12]])
    check(len(batch) == 12 and all(r["fields"]["Age"] == 99 for r in batch), "batch update of 12 records")

    upsert = table.batch_upsert(
        [{"fields": {"Name": "Person 00", "Age": 1000}}, {"fields": {"Name": "Newcomer", "Age": 5}}],
        key_fields=["Name"],
    )
    check(len(upsert["createdRecords"]) == 1 and len(upsert["updatedRecords"]) == 1, "upsert creates and updates")
    check(upsert["records"][0]["fields"]["Age"] == 1000, "upsert answers records in request order")

    try:
        table.create({"Team": "Green"})
        raise AssertionError("an unknown select choice was accepted")
    except Exception as exc:  # requests.HTTPError with Airtable's error
        check("INVALID_MULTIPLE_CHOICE_OPTIONS" in str(exc), "422 error types reach the client")
    green = table.create({"Team": "Green"}, typecast=True)
    check(green["fields"]["Team"] == "Green", "typecast adds a choice")

    deleted = table.batch_delete([r["id"] for r in created[:11]])
    check(len(deleted) == 11 and all(d["deleted"] for d in deleted), "batch delete in chunks of 10")
    check(table.delete(green["id"])["deleted"], "single delete")
    check(len(table.all()) == 26 + 1 + 1 - 11 - 1, "listing reflects every write")

    hook = base.webhook(created_hook.id)
    payloads = list(hook.payloads())
    check(len(payloads) >= 10, f"webhook payloads readable ({len(payloads)})")
    check([p.cursor for p in payloads] == list(range(1, len(payloads) + 1)), "payload cursors count from 1")
    changed = [
        change
        for p in payloads
        for t in p.changed_tables_by_id.values()
        for change in t.changed_records_by_id.values()
    ]
    check(any(c.previous is not None for c in changed), "changed records carry previous values")
    destroyed = [rid for p in payloads for t in p.changed_tables_by_id.values() for rid in t.destroyed_record_ids]
    check(len(destroyed) == 12, "destroyed records appear in payloads")
    team = people_schema.field("Team").id
    created_cells = [
        rec.cell_values_by_field_id
        for p in payloads
        for t in p.changed_tables_by_id.values()
        for rec in t.created_records_by_id.values()
    ]
    check(any(isinstance(c.get(team), dict) and c[team]["name"] == "Red" for c in created_cells), "selects use the V2 cell format")
    more = list(hook.payloads(cursor=payloads[-1].cursor + 1))
    check(more == [], "reading from the next cursor returns nothing new")

    for _ in range(50):
        if PingReceiver.pings:
            break
        time.sleep(0.1)
    check(PingReceiver.pings, "a notification ping arrived")
    body, mac = PingReceiver.pings[0]
    note = WebhookNotification.from_request(body, mac, created_hook.mac_secret_base64)
    check(note.webhook.id == created_hook.id, "the ping's MAC verifies with the secret from creation")
    hooks = base.webhooks()
    check(hooks[0].last_notification_result is not None and hooks[0].last_notification_result.success, "webhook list shows the ping result")
    hooks[0].extend_expiration()
    hooks[0].disable_notifications()
    hooks[0].delete()
    check(base.webhooks() == [], "webhook deleted")
    server.shutdown()
    print(json.dumps({"result": "pass"}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
