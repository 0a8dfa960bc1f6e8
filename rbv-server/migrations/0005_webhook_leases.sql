-- rbv serve: a webhook delivery is sent by one node at a time. The node
-- that records it (or takes it over) holds a lease it extends at each
-- attempt; deliveries whose node stopped are taken over when their lease
-- ran out. Portable SQL, as 0002.
ALTER TABLE webhook_events ADD COLUMN lease_owner TEXT;
ALTER TABLE webhook_events ADD COLUMN lease_until BIGINT;
