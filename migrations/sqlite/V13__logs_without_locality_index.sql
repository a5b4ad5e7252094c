-- Issue 20: every stored request paid for a third secondary index on logs, read only by
-- the burst budget's recount of today's cloud spend (at start-up and when the day turns).
-- That query reads today's rows through logs_time as fast (measured: 0.18-0.26 s against
-- 0.21-0.28 s over 1M rows of the day, half of them cloud), so the index goes.
DROP INDEX IF EXISTS logs_locality_time;
