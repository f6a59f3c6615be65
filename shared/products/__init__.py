"""Which shop products are the supplier's: the product map, the lookup cache, unmatched lines,
the shop's own products, and the open orders waiting for a map."""
