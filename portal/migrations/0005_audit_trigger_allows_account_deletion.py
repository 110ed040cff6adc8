"""The audit trail's trigger (0003) also refused the one UPDATE Django makes on it: deleting an account
sets user_id to NULL on its rows (on_delete=SET_NULL; each row keeps the username), so deleting any
user with audit rows failed on PostgreSQL. That change alone is let through; every other stays refused."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION portal_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.user_id IS NOT NULL AND NEW.user_id IS NULL
       AND (to_jsonb(NEW) - 'user_id') = (to_jsonb(OLD) - 'user_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql;
"""
PREVIOUS = """
CREATE OR REPLACE FUNCTION portal_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_mrn_unique_per_care_team")]
    operations = [migrations.RunPython(forwards, backwards)]
