"""The shop watch: keeping the system's picture of the shop true (catch-up,
verification, webhook and site checks) and writing to the shop what it
should read (problem notes, the sync status meta), and the pickup of
orders once their product is mapped."""
