"""supplier_sync: keeps the supplier's growing order equal to what the shop's orders need."""
