"""Pure, typed business rules: parsing, money, the order state machine, reconciliation, texts."""
