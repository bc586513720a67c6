"""Use cases. Each public function owns one unit of work: it takes plain values and a Database,
opens the transaction, and returns plain records or raises a ServiceError."""
