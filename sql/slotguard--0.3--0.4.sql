-- slotguard 0.3 -> 0.4: the test-only function leaves the installed extension.
\echo Use "ALTER EXTENSION slotguard UPDATE TO '0.4'" to load this file. \quit

-- _boundary_selftest exercised the C++/PostgreSQL boundary for the test suite only. The library
-- keeps its C entry point (sg_boundary_selftest); tests/regress/sql/boundary.sql creates its own
-- SQL function over it for the length of its session.
DROP FUNCTION slotguard._boundary_selftest(text);
