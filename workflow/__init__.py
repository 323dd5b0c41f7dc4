"""rectiflow: the rectification ledger (整改台账) and its workflow."""
