"""``imguard console``: the audit trail in a browser, for moderators rather than engineers.

An overview over time, decisions filtered and opened to see why, the review queue and the sanctions
with their actions, and a box to try a text against the rules. Built on Flask (templates, sessions,
routing) and Flask-WTF (CSRF); never imported by the two callback functions.
"""
