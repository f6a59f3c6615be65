"""What the system knows of the shop's side: its webhooks as last checked, the last runs of
the shop checks, its site and the delivery sources refused."""
