-- +goose Up
-- Every signature updates its user's row in place. With room left on each
-- page the new row version goes on the same page (a HOT update), so the
-- primary key index is neither written nor grown by updates: a big table
-- costs what a small one does (bench/seqbench -preload). It applies to pages
-- written from now on; VACUUM FULL sequences rewrites the existing ones.
-- CockroachDB accepts and ignores fillfactor.
ALTER TABLE sequences SET (fillfactor = 70);

-- +goose Down
ALTER TABLE sequences RESET (fillfactor);
