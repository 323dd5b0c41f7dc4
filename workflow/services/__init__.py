"""Services: the only code that changes the ledger. Each takes a Session and never commits."""
