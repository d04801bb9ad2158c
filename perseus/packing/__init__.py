"""`perseus plan`: the cheapest packing of tenants onto servers that meets every SLA, measured and verified."""
