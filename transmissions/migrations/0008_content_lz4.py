"""Transmission ``content`` compressed with LZ4 rather than pglz (PostgreSQL 14 and later).

An SMTP injection stores its whole source (10 KB in bench/smtp_injection.py) in ``content``,
so every message is compressed when stored and decompressed when the worker reads it. With
LZ4, the listener's group statement cost the PostgreSQL backend 0.133-0.142 ms of CPU per
message against 0.175-0.183 ms with pglz (bench/smtp_store_cpu.py, groups of 3;
bench/RESULTS.md, "Session 17"). Only values written from now on are LZ4; older ones stay readable as they are. A
server built without LZ4 keeps pglz (the migration notes it and goes on).
"""

from django.db import migrations

FORWARD = """
DO $$
BEGIN
  ALTER TABLE transmissions_transmission ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'this PostgreSQL has no LZ4: transmission content stays compressed with pglz';
END $$;
"""

BACKWARD = "ALTER TABLE transmissions_transmission ALTER COLUMN content SET COMPRESSION DEFAULT"


class Migration(migrations.Migration):
    dependencies = [("transmissions", "0007_transmission_source")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
