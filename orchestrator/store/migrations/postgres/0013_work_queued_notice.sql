-- Prompt pick-up across replicas: a task that becomes QUEUED, whatever path made it so (a submit,
-- an approved approval, a resumed parked task, a requeue after its replica died or stopped, a
-- schedule's run), notifies the channel taskgate_work_queued. Every replica LISTENs on it on a
-- connection of its own and wakes its worker pool, which claims at once instead of at its next
-- poll (orchestrator/store/postgres_notices.py); polling stays as the fallback.
--
-- Row-level, filtered by WHEN: the condition is evaluated without calling the function, so the
-- rows that do not become QUEUED (claims, progress, finishing, leases) cost nothing more, and
-- UPDATE OF status keeps updates that leave the status out of the SET list from firing at all. A
-- statement-level trigger would need a transition table, materialised for every insert and status
-- update of the table, to tell whether any row became QUEUED (docs/internals.md has the figures).
-- The payload is empty: PostgreSQL delivers one notice per transaction for identical notices on a
-- channel, so a transaction that queues many tasks wakes every replica once, at commit.

CREATE FUNCTION taskgate_notify_work_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskgate_work_queued', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_notify_work_queued AFTER INSERT OR UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'QUEUED')
    EXECUTE FUNCTION taskgate_notify_work_queued();
