-- Issue 20: the same index as SQLite's V13 (see there).
DROP INDEX IF EXISTS logs_locality_time;
