"""The closed loop of a case (闭环): intake, the move table and engine, work orders, deadlines,
queues, the case page, the ledger and its exports, tracking for reporters, photos, notices to
reporters and units (the outbox and its sender), and who may see a case, its content and its
reporter (access)."""
