-- Which shard hosts each virtual shard (actors/placement.py), recorded when the number of
-- shards changes. No row: virtual shard v lives on shard v % VIGIL_SHARD_COUNT. During a
-- change the new layout is 'moving' (devices whose shard differs are hosted by neither
-- side until it is 'active'); at most one layout is active, at most one moving.

CREATE TABLE shard_layouts (
    epoch        bigint PRIMARY KEY,
    shard_count  integer NOT NULL CHECK (shard_count >= 1),
    assignment   smallint[] NOT NULL CHECK (cardinality(assignment) = 4096),
    state        text NOT NULL CHECK (state IN ('moving', 'active', 'retired', 'abandoned')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);
CREATE UNIQUE INDEX shard_layouts_one_active ON shard_layouts (state) WHERE state = 'active';
CREATE UNIQUE INDEX shard_layouts_one_moving ON shard_layouts (state) WHERE state = 'moving';
