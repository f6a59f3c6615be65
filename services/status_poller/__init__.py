"""status_poller: follows every supplier order from Booked to Dispatched and brings the shop along."""
