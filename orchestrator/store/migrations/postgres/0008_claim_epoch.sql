-- The fencing token of a task's claim: each claim and each take-over of an expired lease adds one.
-- Every change a worker makes to its task is conditional on its claim (worker and epoch), so a
-- worker that lost the task (its lease expired and another took over) can never overwrite it.
ALTER TABLE tasks ADD COLUMN claim_epoch integer NOT NULL DEFAULT 0;
