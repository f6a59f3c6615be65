"""What the supplier must hold and for whom: a pure model and its one repository.

`model` holds the rules (no I/O): which lines an order holds, how the units
the supplier locked are shared among them, which lines are short or released.
`repository` loads the snapshot those rules read and saves what came of them.
supplier_sync, `reconcile` and the operator views all go through these two.
"""
