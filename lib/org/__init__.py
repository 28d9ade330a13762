"""The organisation: the four-tier unit tree with departments, users and login, and who may do
what (the role sets and the case-reading rules)."""
