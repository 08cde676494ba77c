"""Event ingestion: a reliable Redis queue and two stages (queue.py, store.py, aggregate.py).

The API appends validated events to a list (durable once Redis has them). Stage 1
(`store.events_ingest_pending`) moves a bounded batch to a processing list, writes its new events
as rows in one transaction, each with a PendingAggregate row, then removes the batch; a worker
killed mid-batch leaves it in the processing list and the next run re-processes it (event_id
uniqueness makes that harmless). Stage 2 (`aggregate.profiles_aggregate_pending`) folds the
pending events into their profiles' aggregates and deletes the pending rows in one transaction,
then refreshes the profiles (`profiles.services.profiles_refresh`: condition segments through
profiles.hooks, then the cached documents the decision path reads). Splitting them keeps the row
writes cheap (no profile locks or updates) and lets stage 2 coalesce: a profile touched by
several batches while it was busy is updated once.

Analytics consent is enforced here, at storage (store.py; and already at the queue when the
visitor's document says so): events of a visitor whose current consent refuses
`analytics` (or who never chose, under MOSAIC_CONSENT_DEFAULT=opt-in) are dropped and only counted.
"""
